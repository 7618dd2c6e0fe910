package identity

import (
	"bufio"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var (
	nodeRE   = regexp.MustCompile(`^(node|nodejs|bun|deno)(\d+)?$`)
	pythonRE = regexp.MustCompile(`^(python|pypy)(\d+(\.\d+)?)?$`)
	shellRE  = regexp.MustCompile(`^(sh|bash|dash|zsh|ksh|mksh|busybox)$`)
)

// Classify says what a process with these attributes is, reading the
// package files its code lives among.
func Classify(a Attrs) Identity {
	base := filepath.Base(a.Exe)
	switch {
	case nodeRE.MatchString(base):
		return node(a)
	case pythonRE.MatchString(base):
		return python(a)
	case shellRE.MatchString(base):
		if s := script(a, map[string]bool{"-c": true}); s != "" && isFile(s) {
			return Identity{Kind: "script", Name: s, Entry: s, Hash: hashFile(s)}
		}
	}
	if bi, err := buildinfo.ReadFile(a.Exe); err == nil && bi.Path != "" {
		v := bi.Main.Version
		if v == "(devel)" {
			v = ""
		}
		return Identity{Kind: "go", Name: bi.Path, Version: v, BuildID: goBuildID(a.Exe), Entry: a.Exe, Hash: hashFile(a.Exe)}
	}
	return Identity{Kind: "binary", Name: a.Exe, Entry: a.Exe, Hash: hashFile(a.Exe)}
}

// valueOpts are interpreter options that take the next argument as their
// value (so it is not the script).
var valueOpts = map[string]bool{
	// node
	"-r": true, "--require": true, "--import": true, "--loader": true, "--experimental-loader": true,
	"--inspect-port": true, "--title": true, "--env-file": true, "-C": true, "--conditions": true,
	// python
	"-W": true, "-X": true, "-Q": true,
}

// script is the first argument after the interpreter's options, resolved
// against the working directory: the code it runs. stop lists options that
// end the search (python's -m, -c; node's -e).
func script(a Attrs, stop map[string]bool) string {
	for i := 1; i < len(a.Argv); i++ {
		arg := a.Argv[i]
		if stop[arg] {
			return ""
		}
		if valueOpts[arg] {
			i++
			continue
		}
		if strings.HasPrefix(arg, "-") {
			continue
		}
		return resolve(a.Cwd, arg)
	}
	return ""
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

func resolve(cwd, p string) string {
	if !filepath.IsAbs(p) {
		if cwd == "" {
			return ""
		}
		p = filepath.Join(cwd, p)
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}

// node: the package whose package.json is nearest above the script. A
// package inside node_modules is an npm package (npx, a global install, a
// dependency); one elsewhere is a project of the user's, named by its path.
func node(a Attrs) Identity {
	s := script(a, map[string]bool{"-e": true, "--eval": true, "-p": true, "--print": true})
	if s == "" {
		return Identity{Kind: "node", Name: a.Exe + " (inline code)", Entry: a.Exe}
	}
	if pkg, dir, ok := packageJSON(s); ok {
		if pkg.Name == "npm" && strings.HasSuffix(s, "npx-cli.js") {
			if spec := npxPackage(a.Argv); spec != "" {
				name, version := splitSpec(spec)
				return Identity{Kind: "npm", Name: name, Version: version, Entry: s}
			}
		}
		if underNodeModules(dir) && pkg.Name != "" {
			return Identity{Kind: "npm", Name: pkg.Name, Version: pkg.Version, Entry: s}
		}
		return Identity{Kind: "node", Name: s, Version: pkg.Version, Entry: s, Hash: hashFile(s)}
	}
	return Identity{Kind: "node", Name: s, Entry: s, Hash: hashFile(s)}
}

type packageFile struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// packageJSON finds the nearest package.json with a name above path.
func packageJSON(path string) (packageFile, string, bool) {
	dir := filepath.Dir(path)
	for i := 0; i < 12 && dir != "/" && dir != "."; i++ {
		b, err := os.ReadFile(filepath.Join(dir, "package.json"))
		if err == nil {
			var p packageFile
			if json.Unmarshal(b, &p) == nil && p.Name != "" {
				return p, dir, true
			}
		}
		if filepath.Base(dir) == "node_modules" {
			break
		}
		dir = filepath.Dir(dir)
	}
	return packageFile{}, "", false
}

func underNodeModules(dir string) bool {
	return strings.Contains(dir+"/", "/node_modules/")
}

// npxPackage is the package npx was asked to run: the first argument that
// is not an option (or the value of --package / -p).
func npxPackage(argv []string) string {
	for i := 2; i < len(argv); i++ {
		arg := argv[i]
		switch {
		case arg == "--":
			continue
		case arg == "-p" || arg == "--package":
			if i+1 < len(argv) {
				return argv[i+1]
			}
		case strings.HasPrefix(arg, "--package="):
			return strings.TrimPrefix(arg, "--package=")
		case strings.HasPrefix(arg, "-"):
			continue
		default:
			return arg
		}
	}
	return ""
}

// splitSpec splits "@scope/name@1.2.3" or "name@latest".
func splitSpec(spec string) (string, string) {
	at := strings.LastIndexByte(spec, '@')
	if at <= 0 {
		return spec, ""
	}
	return spec[:at], spec[at+1:]
}

// python: a distribution from site-packages (a console script of a venv,
// uvx's or pipx's, or -m of an installed module), else the script itself.
func python(a Attrs) Identity {
	for i := 1; i < len(a.Argv); i++ {
		if a.Argv[i] == "-m" && i+1 < len(a.Argv) {
			mod := a.Argv[i+1]
			if d, v := distOfModule(a.Exe, mod); d != "" {
				return Identity{Kind: "pypi", Name: d, Version: v, Entry: "-m " + mod}
			}
			return Identity{Kind: "python", Name: "-m " + mod, Entry: "-m " + mod}
		}
		if a.Argv[i] == "-c" {
			return Identity{Kind: "python", Name: a.Exe + " (inline code)", Entry: a.Exe}
		}
	}
	s := script(a, nil)
	if s == "" {
		return Identity{Kind: "python", Name: a.Exe, Entry: a.Exe}
	}
	if d, v := distOfScript(s); d != "" {
		return Identity{Kind: "pypi", Name: d, Version: v, Entry: s}
	}
	return Identity{Kind: "python", Name: s, Entry: s, Hash: hashFile(s)}
}

var distInfoRE = regexp.MustCompile(`^(.+?)-([^-]+)\.dist-info$`)

// sitePackages lists the site-packages directories of the environment an
// interpreter or a script's bin/ directory belongs to.
func sitePackages(binDir string) []string {
	env := filepath.Dir(binDir)
	dirs, _ := filepath.Glob(filepath.Join(env, "lib", "python*", "site-packages"))
	return dirs
}

// distOfScript finds the distribution whose entry points name a console
// script (venv/bin/mcp-server-x), or whose files hold the script.
func distOfScript(s string) (string, string) {
	if i := strings.Index(s, "/site-packages/"); i >= 0 {
		top := strings.SplitN(s[i+len("/site-packages/"):], "/", 2)[0]
		return distOfTop(s[:i+len("/site-packages")], top)
	}
	name := filepath.Base(s)
	for _, sp := range sitePackages(filepath.Dir(s)) {
		infos, _ := filepath.Glob(filepath.Join(sp, "*.dist-info"))
		for _, info := range infos {
			if hasConsoleScript(filepath.Join(info, "entry_points.txt"), name) {
				return distName(info)
			}
		}
	}
	return "", ""
}

// distOfModule finds the distribution that holds module mod in the
// interpreter's environment.
func distOfModule(exe, mod string) (string, string) {
	top := strings.SplitN(mod, ".", 2)[0]
	for _, sp := range sitePackages(filepath.Dir(exe)) {
		if d, v := distOfTop(sp, top); d != "" {
			return d, v
		}
	}
	return "", ""
}

// distOfTop finds the distribution of a top-level package in a
// site-packages directory, by its top_level.txt or its RECORD.
func distOfTop(sp, top string) (string, string) {
	infos, _ := filepath.Glob(filepath.Join(sp, "*.dist-info"))
	for _, info := range infos {
		for _, f := range []string{"top_level.txt", "RECORD"} {
			if fileHasLinePrefix(filepath.Join(info, f), top, f == "RECORD") {
				return distName(info)
			}
		}
	}
	return "", ""
}

func distName(info string) (string, string) {
	m := distInfoRE.FindStringSubmatch(filepath.Base(info))
	if m == nil {
		return "", ""
	}
	return strings.ReplaceAll(m[1], "_", "-"), m[2]
}

func hasConsoleScript(path, name string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	section := ""
	for sc.Scan() {
		ln := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(ln, "[") {
			section = ln
			continue
		}
		if k, _, ok := strings.Cut(ln, "="); ok && section == "[console_scripts]" && strings.TrimSpace(k) == name {
			return true
		}
	}
	return false
}

// fileHasLinePrefix: a line of the file is top (top_level.txt) or starts
// with top/ (RECORD).
func fileHasLinePrefix(path, top string, record bool) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ln := strings.TrimSpace(sc.Text())
		if (!record && ln == top) || (record && (strings.HasPrefix(ln, top+"/") || strings.HasPrefix(ln, top+".py,"))) {
			return true
		}
	}
	return false
}

// maxHash bounds what is hashed while a server is being identified (on the
// pipeline's path): a script, not a 20 MiB binary, whose hash would hold
// every event behind it for tens of milliseconds.
const maxHash = 1 << 20

func hashFile(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() || st.Size() > maxHash {
		return ""
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil))
}

// goBuildID reads the Go build id note of an ELF binary.
func goBuildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	b, err := s.Data()
	// an ELF note: namesz, descsz, type, "Go\0\0", then the id
	if err != nil || len(b) < 16 {
		return ""
	}
	return strings.TrimRight(string(b[16:]), "\x00")
}
