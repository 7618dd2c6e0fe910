//go:build linux

package identity

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResolveFromProc: a running process's attributes come from /proc: its
// argv's directories and its environment's confinement variables are its
// roots, $HOME and passwd home are its homes, and its client is the first
// ancestor that does not share its stdin.
func TestResolveFromProc(t *testing.T) {
	dir := t.TempDir()
	data, other, home := filepath.Join(dir, "data"), filepath.Join(dir, "other"), filepath.Join(dir, "svc-home")
	for _, d := range []string{data, other, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	// sh shares the pipe with its child, as npx and npm exec do
	cmd := exec.Command("/bin/sh", "-c", "bash -c 'sleep 30; true' srv "+data+" --out="+other+" ; true")
	cmd.Dir = dir
	cmd.Stdin = pr
	cmd.Env = []string{"HOME=" + home, "ALLOWED_DIRECTORIES=" + other + ":/nonexistent", "XDG_RUNTIME_DIR=" + dir, "PATH=/usr/bin:/bin"}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	r := NewResolver()
	var srv int
	for deadline := time.Now().Add(5 * time.Second); srv == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, c := range r.Proc.Children(cmd.Process.Pid) {
			if exe, _ := r.Proc.Exe(c); strings.HasSuffix(exe, "/bash") {
				srv = c
			}
		}
	}
	if srv == 0 {
		t.Fatal("the server stand-in did not start")
	}
	s, err := r.Resolve(srv)
	if err != nil {
		t.Fatal(err)
	}
	a := s.Attrs
	if !a.FromProc || a.Cwd != dir || a.Home != home || a.UID != os.Getuid() || a.PasswdHome == "" || a.User == "" {
		t.Errorf("attrs: %+v", a)
	}
	if strings.Join(a.Roots, ",") != data+","+other || a.RootsFrom[data] != "argv" || a.RootsFrom[other] != "argv" {
		t.Errorf("roots %v from %v", a.Roots, a.RootsFrom)
	}
	if h := a.Homes(); len(h) != 2 || h[0] != home {
		t.Errorf("homes %v", h)
	}
	if s.Client.PID != os.Getpid() || s.Client.Key != strconv.Itoa(os.Getpid())+"-"+strconv.FormatUint(mustStart(t, r, os.Getpid()), 10) {
		t.Errorf("client %+v, want this test (%d)", s.Client, os.Getpid())
	}
	if s.Identity.Kind != "binary" || !strings.HasSuffix(s.Identity.Name, "/bash") {
		t.Errorf("identity %+v", s.Identity)
	}
	// the environment names roots too (only confinement variables)
	env := []string{"HOME=" + home, "ALLOWED_DIRECTORIES=" + data + ":/nonexistent", "XDG_RUNTIME_DIR=" + other}
	c2 := exec.Command("sleep", "30")
	c2.Env = env
	if err := c2.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c2.Process.Kill(); _ = c2.Wait() }()
	time.Sleep(50 * time.Millisecond)
	s2, err := r.Resolve(c2.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s2.Attrs.Roots, ",") != data || s2.Attrs.RootsFrom[data] != "$ALLOWED_DIRECTORIES" {
		t.Errorf("env roots %v from %v", s2.Attrs.Roots, s2.Attrs.RootsFrom)
	}
	if s2.Client.PID != 0 {
		t.Errorf("a process whose stdin is not a pipe or socket has no client: %+v", s2.Client)
	}
	if _, err := r.Resolve(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
}

func mustStart(t *testing.T, r *Resolver, pid int) uint64 {
	s, err := r.Proc.Start(pid)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConfigRoots: a server confined by a configuration file its argv
// names gets the directories under the file's root keys as roots, and
// nothing from other keys.
func TestConfigRoots(t *testing.T) {
	dir := t.TempDir()
	data, logs := filepath.Join(dir, "data"), filepath.Join(dir, "logs")
	for _, d := range []string{data, logs} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	js := filepath.Join(dir, "server.json")
	if err := os.WriteFile(js, []byte(`{"allowed_dir": "`+data+`", "log_dir": "`+logs+`", "name": "`+dir+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	yml := filepath.Join(dir, "conf.yaml")
	if err := os.WriteFile(yml, []byte("workspace:\n  roots:\n    - "+logs+"\n    - /\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	roots, from := argvRoots(Attrs{Argv: []string{"srv", "--config", "server.json"}, Cwd: dir})
	if len(roots) != 1 || roots[0] != data || from[data] != "config:"+js {
		t.Fatalf("roots %v from %v, want [%s] from config:%s", roots, from, data, js)
	}
	roots, _ = argvRoots(Attrs{Argv: []string{"srv", "--config=" + yml}, Cwd: "/"})
	if len(roots) != 1 || roots[0] != logs {
		t.Fatalf("yaml roots %v, want [%s]", roots, logs)
	}
}
