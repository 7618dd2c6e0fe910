package loader

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel tests run this test binary again as the traced process, with
// MCPSEC_HELPER naming the syscalls to make; the test then checks what the
// sensor saw against what the helper did.
const helperEnv = "MCPSEC_HELPER"

func init() {
	action := os.Getenv(helperEnv)
	if action == "" {
		return
	}
	if err := helper(action, strings.Split(os.Getenv("MCPSEC_HELPER_ARGS"), "\x00")); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(111)
	}
	os.Exit(0)
}

// helperCmd returns the command that runs action in a fresh process.
func helperCmd(action string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+action, "MCPSEC_HELPER_ARGS="+strings.Join(args, "\x00"))
	cmd.Stderr = os.Stderr
	return cmd
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func helper(action string, args []string) error {
	switch action {
	case "cat":
		_, err := io.Copy(os.Stdout, os.Stdin)
		return err
	case "paced":
		// args: N/GAP: N messages through a pipe, a write and a read
		// each, GAP apart (a server answering a steady client)
		ns, gs, _ := strings.Cut(args[0], "/")
		n, _ := strconv.Atoi(ns)
		gap, _ := time.ParseDuration(gs)
		var p [2]int
		must(unix.Pipe(p[:]))
		buf := make([]byte, 64)
		for i := 0; i < n; i++ {
			_, err := unix.Write(p[1], []byte(`{"jsonrpc":"2.0","method":"ping"}`+"\n"))
			must(err)
			_, err = unix.Read(p[0], buf)
			must(err)
			time.Sleep(gap)
		}
	case "open":
		// args: dir; opens dir/allowed/link (-> ../secret) by dirfd, and
		// allowed/../other relative to the cwd dir, and a missing file
		dir := args[0]
		dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(err)
		fd, err := unix.Openat(dfd, "allowed/link", unix.O_RDONLY, 0)
		must(err)
		unix.Close(fd)
		must(os.Chdir(dir))
		fd, err = unix.Open("allowed/../other", unix.O_RDONLY, 0)
		must(err)
		unix.Close(fd)
		if _, err := unix.Open("allowed/missing", unix.O_RDONLY, 0); err == nil {
			return fmt.Errorf("missing file opened")
		}
		fd, err = unix.Open("allowed/new.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 0o640)
		must(err)
		unix.Close(fd)
	case "fileops":
		dir := args[0]
		must(os.Chdir(dir))
		must(unix.Mkdir("d", 0o700))
		must(os.WriteFile("f", []byte("x"), 0o600))
		must(unix.Rename("f", "d/g"))
		must(unix.Chmod("d/g", 0o755))
		fd, err := unix.Open("d/g", unix.O_RDWR, 0)
		must(err)
		must(unix.Fchmod(fd, 0o700))
		must(unix.Ftruncate(fd, 0))
		unix.Close(fd)
		must(unix.Symlink("/etc/passwd", "d/ln"))
		must(unix.Unlink("d/ln"))
		must(unix.Unlink("d/g"))
		must(unix.Rmdir("d"))
	case "net":
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		must(err)
		c, err := net.Dial("tcp4", ln.Addr().String())
		must(err)
		s, err := ln.Accept()
		must(err)
		c.Close()
		s.Close()
		ln.Close()
		ln6, err := net.Listen("tcp6", "[::1]:0")
		must(err)
		c6, err := net.Dial("tcp6", ln6.Addr().String())
		must(err)
		c6.Close()
		ln6.Close()
		sock := filepath.Join(args[0], "s.sock")
		lu, err := net.Listen("unix", sock)
		must(err)
		cu, err := net.Dial("unix", sock)
		must(err)
		cu.Close()
		lu.Close()
		u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(err)
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		must(err)
		must(unix.Sendto(fd, []byte("ping"), 0, &unix.SockaddrInet4{Port: u.LocalAddr().(*net.UDPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}))
		unix.Close(fd)
		u.Close()
	case "vectors":
		var p [2]int
		must(unix.Pipe(p[:]))
		_, err := unix.Writev(p[1], [][]byte{[]byte("hello "), []byte("vectored "), []byte("world\n")})
		must(err)
		a, b := make([]byte, 4), make([]byte, 64)
		_, err = unix.Readv(p[0], [][]byte{a, b})
		must(err)
		// the kernel takes fds as ints: the upper half of the register is ignored
		hi := []byte("upper half\n")
		if _, _, e := unix.Syscall(unix.SYS_WRITE, uintptr(p[1])|1<<32, uintptr(unsafe.Pointer(&hi[0])), uintptr(len(hi))); e != 0 {
			return e
		}
		_, err = unix.Read(p[0], b)
		must(err)
		sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		must(err)
		must(unix.Sendmsg(sp[0], []byte("over sendmsg\n"), nil, nil, 0))
		peek := make([]byte, 64)
		_, _, _, _, err = unix.Recvmsg(sp[1], peek, nil, unix.MSG_PEEK)
		must(err)
		_, _, _, _, err = unix.Recvmsg(sp[1], peek, nil, 0)
		must(err)
	case "big":
		// args: n; write n bytes to a pipe in one write, read them back
		var n int
		fmt.Sscan(args[0], &n)
		var p [2]int
		must(unix.Pipe2(p[:], 0))
		_, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 1<<20)
		must(err)
		buf := []byte(strings.Repeat("z", n))
		go func() { _, _ = unix.Write(p[1], buf) }()
		got := 0
		rb := make([]byte, 1<<20)
		for got < n {
			k, err := unix.Read(p[0], rb)
			must(err)
			got += k
		}
	case "splice":
		f, err := os.CreateTemp("", "splice")
		must(err)
		defer os.Remove(f.Name())
		_, _ = f.WriteString("spliced bytes\n")
		_, _ = f.Seek(0, 0)
		var p [2]int
		must(unix.Pipe(p[:]))
		_, err = unix.Splice(int(f.Fd()), nil, p[1], nil, 14, 0)
		must(err)
	case "lifecycle":
		cmd := exec.Command("/bin/sh", "-c", "exit 3")
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			return fmt.Errorf("child: %v", err)
		}
		_ = exec.Command("/nonexistent/binary").Run()
	case "escape":
		// in a child thread locked to itself, so the test process is unharmed
		done := make(chan error, 1)
		go func() {
			runtimeLock()
			done <- unix.Unshare(unix.CLONE_NEWUTS)
		}()
		if err := <-done; err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		c := exec.Command("/bin/true")
		c.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUTS}
		must(c.Run())
		fd, err := unix.MemfdCreate("payload", 0)
		must(err)
		unix.Close(fd)
		_ = unix.Setuid(0)
		_, _, _ = unix.Syscall(unix.SYS_PTRACE, unix.PTRACE_ATTACH, 1, 0)
	case "fork":
		// args: n; start n children that each open a file, then wait
		var n int
		fmt.Sscan(args[0], &n)
		var cmds []*exec.Cmd
		for i := 0; i < n; i++ {
			// alive together, so the map fills; they open after it has
			c := exec.Command("/bin/sh", "-c", "sleep 0.5; exec /bin/cat /etc/hostname")
			must(c.Start())
			cmds = append(cmds, c)
		}
		for _, c := range cmds {
			_ = c.Wait()
		}
	default:
		return fmt.Errorf("unknown helper action %q", action)
	}
	return nil
}

// runtimeLock pins the goroutine to its thread for good: the thread dies
// with it, taking its unshared namespace along.
func runtimeLock() { runtime.LockOSThread() }
