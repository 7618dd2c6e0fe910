package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/pkg/contain"
)

// gracePeriod is how long a stopped command has between SIGTERM and the
// kill of its whole cgroup.
const gracePeriod = 5 * time.Second

// runCommand starts the command inside the tracked cgroup, so it is traced
// from its first instruction, with stdio passed straight through. When ctx
// ends it sends SIGTERM, then kills the cgroup after a grace period (or at
// once if o.Force fires), so no descendant survives.
func runCommand(ctx context.Context, o Options, cg *contain.Cgroup, sink *Sink) (int, error) {
	t := o.Target
	cmd := exec.Command(t.Command[0], t.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = t.Stdin, t.Stdout, t.Stderr
	var relay *os.File
	if t.RelayStderr {
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, fmt.Errorf("relaying the command's stderr: %w", err)
		}
		cmd.Stderr, relay = pw, pw
		relayed := make(chan struct{})
		go func() { sink.Relay(pr); pr.Close(); close(relayed) }()
		defer func() { <-relayed }()
	}
	if ctx.Err() != nil {
		return -1, errors.New("stopped before the command was started")
	}
	// No Pdeathsig: a server contained when the sensor is killed stays
	// contained, frozen, for the next sensor and the analyst (a fatal
	// signal kills even a frozen process). A stdio server still ends with
	// the sensor: its client, its command gone, closes the pipes.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true,
		CgroupFD:    cg.FD(),
	}
	if t.Launch != nil {
		t.Launch(cmd)
	}
	err := cmd.Start()
	if relay != nil {
		relay.Close() // the child holds its own copy
	}
	if err != nil {
		code := 126
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			code = 127
		}
		return code, &NotStartedError{Command: t.Command[0], Err: err}
	}
	if t.Started != nil {
		if err := t.Started(cmd); err != nil {
			_ = cg.Kill()
			_ = cmd.Wait()
			return 126, err
		}
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(gracePeriod):
		case <-o.Force:
		}
		if cmd.ProcessState == nil {
			if kerr := cg.Kill(); kerr != nil {
				o.Log.Warn("killing the command's cgroup", "error", kerr)
			}
			err = <-done
		}
	}
	// whatever the command left running in its cgroup goes with it
	if pids, _ := cg.Procs(); len(pids) > 0 {
		o.Log.Info("killing processes the command left behind", "pids", pids)
		_ = cg.Kill()
	}
	return exitCode(cmd, err)
}

// NotStartedError is a command that could not be started (its trace says
// nothing more than why).
type NotStartedError struct {
	Command string
	Err     error
}

func (e *NotStartedError) Error() string { return fmt.Sprintf("starting %s: %v", e.Command, e.Err) }
func (e *NotStartedError) Unwrap() error { return e.Err }

func exitCode(cmd *exec.Cmd, err error) (int, error) {
	if cmd.ProcessState == nil {
		return -1, err
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return cmd.ProcessState.ExitCode(), err
}

// waitPIDs returns when every root process has exited or ctx is done.
func waitPIDs(ctx context.Context, pids []int) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if errors.Is(err, unix.ESRCH) {
			continue // exited since it was found at the start: done with it
		}
		if err != nil {
			return fmt.Errorf("watching pid %d: %w", pid, err)
		}
		fds = append(fds, fd)
	}
	for {
		alive := 0
		for _, fd := range fds {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(pfd, 0)
			if err != nil && !errors.Is(err, unix.EINTR) {
				return fmt.Errorf("watching the traced processes: %w", err)
			}
			if n == 0 || errors.Is(err, unix.EINTR) {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}
