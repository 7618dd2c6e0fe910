package loader

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mcpsec/sensor/internal/testutil"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/wire"
)

// captured holds what a traced command produced.
type captured struct {
	mu       sync.Mutex
	effects  []wire.Effect
	slots    [][4]string
	chunks   []wire.Chunk
	counters map[string]uint64
}

func (c *captured) add(b []byte) {
	cls, err := wire.RecordClass(b)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch cls {
	case wire.ClassEffect:
		var e wire.Effect
		if err := wire.ParseEffect(b, &e); err != nil {
			panic(err)
		}
		var s [4]string
		for i := range s {
			s[i] = string(e.Slots[i])
		}
		e.Slots = [4][]byte{}
		c.effects = append(c.effects, e)
		c.slots = append(c.slots, s)
	case wire.ClassChunk:
		var ch wire.Chunk
		if err := wire.ParseChunk(b, &ch); err != nil {
			panic(err)
		}
		ch.Data = bytes.Clone(ch.Data)
		c.chunks = append(c.chunks, ch)
	}
}

// traceCmd runs cmd in a fresh tracked cgroup with the sensor loaded.
func traceCmd(t *testing.T, cfg Config, cmd *exec.Cmd, during ...func()) *captured {
	t.Helper()
	testutil.RequireBPF(t)
	cfg.SelfPID = uint32(os.Getpid())
	o, err := Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	rd, err := o.NewReader()
	if err != nil {
		t.Fatal(err)
	}
	c := &captured{}
	rd.RunFunc(c.add)
	cg, err := contain.Create(fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.TrackCgroup(cg.ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Attach(); err != nil {
		t.Fatal(err)
	}
	for _, f := range during {
		f()
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.FD()}
	if err := cmd.Run(); err != nil {
		t.Logf("command: %v", err)
	}
	rd.Drain(50*time.Millisecond, 2*time.Second)
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cg.Remove(time.Second); err != nil {
		t.Fatal(err)
	}
	c.counters, err = o.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLoadAttach(t *testing.T) {
	testutil.RequireBPF(t)
	o, err := Load(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Attach(); err != nil {
		t.Fatal(err)
	}
}
