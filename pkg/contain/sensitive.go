package contain

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// FileID is a file by device and inode, as stat gives them.
type FileID struct {
	Path string
	Dev  uint64
	Ino  uint64
}

// ExpandSensitive finds the files the credential globs name on this host:
// `~/` for /root, every /home/NAME and the homes given (a server's $HOME
// and passwd home, wherever they are), `*` and `?` within a path element.
// Patterns with `**` cannot be listed ahead of time and are skipped (the
// rules still judge them, after the fact).
func ExpandSensitive(patterns []string, extraHomes ...string) []FileID {
	homes := []string{"/root"}
	for _, h := range extraHomes {
		if h != "" && h != "/" {
			homes = append(homes, filepath.Clean(h))
		}
	}
	if ents, err := os.ReadDir("/home"); err == nil {
		for _, e := range ents {
			if e.IsDir() {
				homes = append(homes, filepath.Join("/home", e.Name()))
			}
		}
	}
	seen := map[[2]uint64]bool{}
	var out []FileID
	for _, pat := range patterns {
		if strings.Contains(pat, "**") {
			continue
		}
		var globs []string
		if rest, ok := strings.CutPrefix(pat, "~/"); ok {
			for _, h := range homes {
				globs = append(globs, filepath.Join(h, rest))
			}
		} else {
			globs = []string{pat}
		}
		for _, g := range globs {
			matches, _ := filepath.Glob(g)
			for _, m := range matches {
				var st unix.Stat_t
				if unix.Stat(m, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
					continue
				}
				k := [2]uint64{st.Dev, st.Ino}
				if !seen[k] {
					seen[k] = true
					out = append(out, FileID{Path: m, Dev: st.Dev, Ino: st.Ino})
				}
			}
		}
	}
	return out
}
