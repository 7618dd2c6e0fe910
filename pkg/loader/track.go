package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
)

// Server identifies a server: its root process and that process's start
// time (CLOCK_BOOTTIME ns), since pids are reused.
type Server struct {
	PID   uint32
	Start uint64
}

// TrackPID marks a running process as part of server s. start is the
// process's own start time (/proc/PID/stat, in ns): an entry whose pid was
// reused by another process is recognised and dropped by the kernel (0: no
// check). attached says the process was already running, so its streams may
// start mid-message. Children it forks from now on are tracked by the kernel.
func (o *Objects) TrackPID(pid uint32, start uint64, s Server, attached bool) error {
	v := sensorProcInfo{Server: s.PID, ServerStart: s.Start, Start: start, Flags: uint32(sensorProcFlagsP_TRACKED)}
	if attached {
		v.Flags |= uint32(sensorProcFlagsP_ATTACHED)
	}
	if err := o.objs.Tracked.Update(pid, v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("tracking pid %d: %w", pid, err)
	}
	return nil
}

// Untrack forgets a process. Its children keep their own entries.
func (o *Objects) Untrack(pid uint32) error {
	err := o.objs.Tracked.Delete(pid)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("untracking pid %d: %w", pid, err)
	}
	return nil
}

// TrackCgroup makes every process created in the cgroup a tracked process
// from its first instruction; the first one roots the server.
func (o *Objects) TrackCgroup(id uint64) error {
	v := sensorProcInfo{Flags: uint32(sensorProcFlagsP_TRACKED)}
	if err := o.objs.TrackedCgroups.Update(id, v, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("tracking cgroup %d: %w", id, err)
	}
	return nil
}

// UntrackCgroup stops adopting new processes of the cgroup.
func (o *Objects) UntrackCgroup(id uint64) error {
	err := o.objs.TrackedCgroups.Delete(id)
	if err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("untracking cgroup %d: %w", id, err)
	}
	return nil
}

// AddCandidate watches a running process as a possible MCP server: it
// becomes one (with its descendants from then on) when it reads, on its
// stdin, evidence that it speaks MCP (bpf/process.h, scan_step). For a
// server that started before the sensor: no deadline, a budget of reads.
func (o *Objects) AddCandidate(pid uint32, start uint64) error {
	v := sensorProcInfo{Server: pid, ServerStart: start, Start: start, Flags: uint32(sensorProcFlagsP_CANDIDATE | sensorProcFlagsP_ATTACHED),
		Deadline: ^uint64(0), Budget: o.cfg.CandidateBudget}
	if err := o.objs.Tracked.Update(pid, v, ebpf.UpdateNoExist); err != nil {
		return fmt.Errorf("watching pid %d: %w", pid, err)
	}
	return nil
}
