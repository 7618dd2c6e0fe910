package identity

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/mcpsec/sensor/pkg/proc"
)

// Resolver reads servers from /proc. Safe for concurrent use.
type Resolver struct {
	Proc   proc.Root
	Passwd string // the passwd file (default /etc/passwd)

	mu    sync.Mutex
	cache map[string]Identity // by executable and argv
}

// NewResolver reads the host's /proc and /etc/passwd.
func NewResolver() *Resolver { return &Resolver{Proc: proc.Host, Passwd: "/etc/passwd"} }

// maxCache bounds the identities remembered.
const maxCache = 4096

// FromExec builds a server from what an exec record said (its executable
// and argv) when the process is gone from /proc: what can be known without
// it (no working directory, environment or client).
func (r *Resolver) FromExec(pid int, exe string, argv []string) Server {
	a := Attrs{PID: pid, Exe: exe, Argv: argv, UID: -1}
	a.Roots, a.RootsFrom = argvRoots(a)
	return Server{Identity: r.classify(a), Attrs: a}
}

func (r *Resolver) classify(a Attrs) Identity {
	key := a.Exe + "\x00" + a.Cwd + "\x00" + strings.Join(a.Argv, "\x00")
	r.mu.Lock()
	id, ok := r.cache[key]
	r.mu.Unlock()
	if ok {
		return id
	}
	id = Classify(a)
	r.mu.Lock()
	if r.cache == nil || len(r.cache) >= maxCache {
		r.cache = map[string]Identity{}
	}
	r.cache[key] = id
	r.mu.Unlock()
	return id
}

func (r *Resolver) proc() proc.Root {
	if r.Proc == "" {
		return proc.Host
	}
	return r.Proc
}

// attrs reads a process's attributes. Its environment names roots in the
// variables that confine servers (ALLOWED_DIRECTORIES, ...) which its
// client set for it: those whose value the client's own environment
// (clientEnv, if known) does not share.
func (r *Resolver) attrs(pid int, clientEnv map[string]string) (Attrs, error) {
	p := r.proc()
	a := Attrs{PID: pid, UID: -1, FromProc: true}
	var err error
	if a.Argv, err = p.Cmdline(pid); err != nil {
		return a, fmt.Errorf("reading the command line of process %d: %w", pid, err)
	}
	if a.Exe, err = p.Exe(pid); err != nil {
		return a, fmt.Errorf("reading the executable of process %d: %w", pid, err)
	}
	a.Cwd, _ = p.Cwd(pid)
	if uid, err := p.UID(pid); err == nil {
		a.UID = uid
		a.User, a.PasswdHome = r.passwd(uid)
	}
	env, _ := p.Environ(pid)
	a.Home = env["HOME"]
	a.Roots, a.RootsFrom = argvRoots(a)
	for _, k := range sortedKeys(env) {
		if !rootVar(k) {
			continue
		}
		if v, ok := clientEnv[k]; ok && v == env[k] {
			continue // inherited, not set for the server
		}
		for _, v := range strings.FieldsFunc(env[k], func(c rune) bool { return c == ':' || c == ',' }) {
			if d := existingDir(a.Cwd, v, true); d != "" && !contains(a.Roots, d) {
				a.Roots = append(a.Roots, d)
				a.RootsFrom[d] = "$" + k
			}
		}
	}
	return a, nil
}

// argvRoots are the directories a command line names: arguments (and the
// values of --opt=value) that are existing directories, relative ones
// against the working directory.
func argvRoots(a Attrs) ([]string, map[string]string) {
	roots, from := []string{}, map[string]string{}
	for _, arg := range a.Argv[min(1, len(a.Argv)):] {
		v := arg
		if strings.HasPrefix(arg, "-") {
			_, after, ok := strings.Cut(arg, "=")
			if !ok {
				continue
			}
			v = after
		}
		if d := existingDir(a.Cwd, v, false); d != "" && !contains(roots, d) {
			roots = append(roots, d)
			from[d] = "argv"
			continue
		}
		if f := configFile(a.Cwd, v); f != "" {
			for _, d := range configRoots(f) {
				if !contains(roots, d) {
					roots = append(roots, d)
					from[d] = "config:" + f
				}
			}
		}
	}
	return roots, from
}

// existingDir is v as a directory that exists (relative to cwd unless
// absOnly), cleaned, or "".
func existingDir(cwd, v string, absOnly bool) string {
	if v == "" || strings.ContainsRune(v, '\x00') {
		return ""
	}
	v = strings.TrimPrefix(v, "file://")
	if !filepath.IsAbs(v) {
		if absOnly || cwd == "" {
			return ""
		}
		v = filepath.Join(cwd, v)
	}
	st, err := os.Stat(v)
	if err != nil || !st.IsDir() {
		return ""
	}
	return filepath.Clean(v)
}

var (
	rootVarRE     = regexp.MustCompile(`(?i)(^|_)(ROOTS?|DIRS?|DIRECTORY|DIRECTORIES|WORKSPACES?|ALLOWED\w*|PATHS?)$`)
	notRootVarRE  = regexp.MustCompile(`(?i)^(MCPSEC_|npm_|XDG_|NVM_|PYENV_|GO|CARGO_|RUSTUP_|JAVA_|CONDA_|VIRTUAL_ENV|PWD|OLDPWD|HOME|TMPDIR|TEMP|TMP|PATH|LD_|MANPATH|INFOPATH|NODE_PATH|PYTHONPATH|STATE_DIRECTORY|RUNTIME_DIRECTORY|CACHE_DIRECTORY|LOGS_DIRECTORY|CONFIGURATION_DIRECTORY|CREDENTIALS_DIRECTORY|SYSTEMD_)`)
	cacheVarRE    = regexp.MustCompile(`(?i)(CACHE|TEMP|TMP|LOG|CERT|SSL|TLS|_CA_|CA_?PATH|KEYS?_)`)
	passwdFieldRE = regexp.MustCompile(`^[^:]*:[^:]*:\d+:`)
)

// rootVar: an environment variable that may name directories a server is
// confined to (ALLOWED_DIRECTORIES, MCP_ROOTS, WORKSPACE_DIR, ...); the
// variables of runtimes, shells and service managers are not.
func rootVar(k string) bool {
	return rootVarRE.MatchString(k) && !notRootVarRE.MatchString(k) && !cacheVarRE.MatchString(k)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// passwd returns the name and home of a uid.
func (r *Resolver) passwd(uid int) (string, string) {
	path := r.Passwd
	if path == "" {
		path = "/etc/passwd"
	}
	f, err := os.Open(path)
	if err != nil {
		return "", ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ln := sc.Text()
		if !passwdFieldRE.MatchString(ln) {
			continue
		}
		f := strings.Split(ln, ":")
		if len(f) >= 6 {
			if u, err := strconv.Atoi(f[2]); err == nil && u == uid {
				return f[0], f[5]
			}
		}
	}
	return "", ""
}
