package loader

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf/link"
)

// Empty is the sensor's hooks with empty programs attached: the floor the
// overhead benchmark compares against (nothing / empty / sensor).
type Empty struct {
	objs  emptyObjects
	links []link.Link
}

// AttachEmpty loads and attaches the empty programs.
func AttachEmpty() (*Empty, error) {
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	e := &Empty{}
	if err := loadEmptyObjects(&e.objs, nil); err != nil {
		return nil, fmt.Errorf("loading the empty programs: %w", err)
	}
	links, err := attachAll([]hook{
		{"sched_process_fork", e.objs.EmptyFork},
		{"sched_process_exec", e.objs.EmptyExec},
		{"sched_process_exit", e.objs.EmptyExit},
		{"sys_exit", e.objs.EmptySysExit},
	})
	e.links = links
	if err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Close detaches and unloads.
func (e *Empty) Close() error {
	return errors.Join(closeLinks(e.links), e.objs.Close())
}
