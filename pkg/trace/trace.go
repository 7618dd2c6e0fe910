// Package trace runs a live investigation: load the sensor, track a command,
// a running process or the MCP servers it discovers, and print every
// JSON-RPC message and effect until the traced process ends or the context
// is cancelled, then the counters.
package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/loader"
)

// Options says what to trace and how to print it.
type Options struct {
	Loader loader.Config
	Decode decode.Options
	Format string // "text" or "json"
	Color  bool
	Out    io.Writer
	// PIDs are traced with their descendants. Command, if set, is launched
	// with Stdin/Stdout/Stderr and traced from its first instruction. With
	// neither, the sensor discovers MCP servers host-wide.
	PIDs    []int
	Command []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
	// StatsEvery prints a stats line periodically (0: only at the end).
	StatsEvery time.Duration
	// OrderWindow holds events this long to print them in time order
	// (0: print as decoded).
	OrderWindow time.Duration
	Log         hclog.Logger
}

// Result is how a trace ended.
type Result struct {
	// ExitCode of the launched command (128+signal if killed), -1 if none.
	ExitCode int
	Stats    Stats
}

// Run traces until the command or the traced processes end, or ctx is done.
func Run(ctx context.Context, o Options) (Result, error) {
	res := Result{ExitCode: -1}
	if o.Log == nil {
		o.Log = hclog.NewNullLogger()
	}
	w, err := NewWriter(o.Format, o.Out, o.Color)
	if err != nil {
		return res, err
	}
	discover := len(o.PIDs) == 0 && len(o.Command) == 0
	o.Loader.SelfPID = uint32(os.Getpid())
	o.Loader.Discover = discover

	objs, err := loader.Load(o.Loader)
	if err != nil {
		return res, err
	}
	defer objs.Close()

	// Readers first, then maps, then hooks (DESIGN.md, "Loader order").
	rd, err := objs.NewReader()
	if err != nil {
		return res, err
	}
	dec := decode.NewDecoder(o.Decode)
	var writeErr error
	ord := newOrderer(o.OrderWindow, 100000, func(e decode.Event) {
		if err := w.Event(e); err != nil && writeErr == nil {
			writeErr = err
		}
	})
	emit := ord.push
	rd.Run(func(b []byte) {
		if err := dec.Record(b, emit); err != nil {
			o.Log.Debug("bad record", "error", err)
		}
	})
	closeReader := func() error {
		rd.Drain(50*time.Millisecond, 2*time.Second)
		rd.Do(func() {
			dec.Flush(emit)
			ord.flush()
		})
		return rd.Close()
	}

	var cg *contain.Cgroup
	switch {
	case len(o.Command) > 0:
		cg, err = contain.Create(fmt.Sprintf("trace-%d", os.Getpid()))
		if err != nil {
			rd.Close()
			return res, fmt.Errorf("a command is traced from its first instruction through a cgroup of its own: %w", err)
		}
		defer func() {
			if err := cg.Remove(2 * time.Second); err != nil {
				o.Log.Warn("leaving the trace cgroup behind", "error", err)
			}
		}()
		if err := objs.TrackCgroup(cg.ID); err != nil {
			rd.Close()
			return res, err
		}
	case len(o.PIDs) > 0:
		if err := trackTrees(objs, o.PIDs); err != nil {
			rd.Close()
			return res, err
		}
	default:
		for pid, cmd := range existingServers(os.Getpid()) {
			o.Log.Info("tracking a running process that looks like an MCP server (started before the sensor: matched by its command line, not its initialize)", "pid", pid, "cmd", cmd)
			if err := trackTrees(objs, []int{pid}); err != nil {
				o.Log.Warn("could not track", "pid", pid, "error", err)
			}
		}
	}

	if err := objs.Attach(); err != nil {
		rd.Close()
		return res, err
	}
	if len(o.PIDs) > 0 {
		// children forked between the first walk and attach
		if err := trackTrees(objs, o.PIDs); err != nil {
			o.Log.Warn("re-walking process trees", "error", err)
		}
	}

	switch {
	case len(o.Command) > 0:
		o.Log.Info("tracing", "command", o.Command, "cgroup", cg.Path)
	case len(o.PIDs) > 0:
		o.Log.Info("tracing", "pids", o.PIDs)
	default:
		o.Log.Info("tracing: discovering MCP servers (new processes with a pipe or socket for stdin that read JSON-RPC)")
	}

	stop := make(chan struct{})
	flushed := make(chan struct{})
	go periodic(rd, dec, w, objs, o.StatsEvery, emit, ord, stop, flushed)

	switch {
	case len(o.Command) > 0:
		res.ExitCode, err = runCommand(ctx, o, cg)
	case len(o.PIDs) > 0:
		err = waitPIDs(ctx, o.PIDs)
	default:
		<-ctx.Done()
	}
	close(stop)
	<-flushed

	cerr := closeReader()
	res.Stats = collectStats(dec, objs, rd)
	if e := w.Stats(&res.Stats); e != nil && writeErr == nil {
		writeErr = e
	}
	if e := w.Flush(); e != nil && writeErr == nil {
		writeErr = e
	}
	return res, errors.Join(err, cerr, writeErr)
}

// trackTrees tracks each pid and its descendants as one server per pid.
func trackTrees(objs *loader.Objects, pids []int) error {
	for _, root := range pids {
		start, err := procStart(root)
		if err != nil {
			return fmt.Errorf("process %d: %w", root, err)
		}
		srv := loader.Server{PID: uint32(root), Start: start}
		err = walkTree(root, func(pid int) error {
			return objs.TrackPID(uint32(pid), srv, true)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func periodic(rd *loader.Reader, dec *decode.Decoder, w Writer, objs *loader.Objects,
	every time.Duration, emit func(decode.Event), ord *orderer, stop, done chan struct{}) {
	defer close(done)
	flush := time.NewTicker(50 * time.Millisecond)
	defer flush.Stop()
	var statsC <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		statsC = t.C
	}
	for {
		select {
		case <-stop:
			return
		case <-flush.C:
			rd.Do(func() {
				dec.Tick(decode.BootNow(), emit)
				ord.tick(time.Now())
				_ = w.Flush()
			})
		case <-statsC:
			st := collectStats(dec, objs, rd)
			rd.Do(func() { _ = w.Stats(&st); _ = w.Flush() })
		}
	}
}

func collectStats(dec *decode.Decoder, objs *loader.Objects, rd *loader.Reader) Stats {
	st := Stats{Kind: "stats", Time: time.Now()}
	rd.Do(func() { st.Decoder = dec.Stats() })
	k, err := objs.Counters()
	if err == nil {
		st.Kernel = k
	}
	st.Effects = st.Decoder.Effects
	st.Messages = st.Decoder.MessagesIn + st.Decoder.MessagesOut
	st.Events = st.Effects + st.Messages
	st.Drops = k["effect_ring_full"] + k["payload_ring_full"] + k["recursion_misses"] + k["scratch_miss"]
	st.Cut = k["capture_cap_cut"] + k["payload_fault"] + k["path_cut"] + k["string_cut"] + st.Decoder.Truncated
	return st
}

// runCommand starts the command inside the tracked cgroup, so it is traced
// from its first instruction, with stdio passed straight through.
func runCommand(ctx context.Context, o Options, cg *contain.Cgroup) (int, error) {
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = o.Stdin, o.Stdout, o.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		UseCgroupFD: true,
		CgroupFD:    cg.FD(),
		// the server dies with the sensor, as it would with its client
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return -1, fmt.Errorf("starting %s: %w", o.Command[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// forward the stop, then insist
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err = <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	return exitCode(cmd, err)
}

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
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			return fmt.Errorf("watching pid %d: %w", pid, err)
		}
		fds = append(fds, fd)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for {
		alive := 0
		for _, fd := range fds {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, _ := unix.Poll(pfd, 0)
			if n == 0 {
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
