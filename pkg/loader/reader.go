package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Reader reads the effect and payload rings, one goroutine per ring, and
// does nothing else on them: records are copied into batches and handed
// on a channel to whoever decodes them, who gives each batch back with
// Done. What the kernel cannot put in a full ring it counts.
type Reader struct {
	rings    []*ringbuf.Reader
	interval time.Duration
	out      chan *Batch
	free     [2]chan *Batch
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
	handling atomic.Int64 // records read from a ring, not yet Done
	// per ring: records read and not yet Done, and Done ever
	ringBusy    [2]atomic.Int64
	ringHandled [2]atomic.Uint64
	ringQuietAt [2]uint64 // when the ring was last found quiet (0: not)
	ringQuietN  [2]uint64 // ringHandled then
	closed      atomic.Bool
	ringMu      sync.RWMutex     // a ring's fill is not read while the ring closes
	last        [2]atomic.Uint64 // per ring: the kernel time of the last record Done
	lastWake    *ebpf.Map        // the kernel's last forced wakeup, per ring
	wakeErr     atomic.Bool      // resetting it failed (reported once)
	// waits are the rings' descriptors in Go's poller: a reader waits
	// there, parked, rather than in epoll_wait holding a thread (which
	// keeps the runtime's monitor waking every 20 µs to take its P back)
	waits [2]syscall.RawConn
	files [2]*os.File
}

// Batch is records of one ring, in ring order.
type Batch struct {
	Ring int
	buf  []byte
	ends []int
	last uint64 // kernel time of the last record
}

// Len is the number of records.
func (b *Batch) Len() int { return len(b.ends) }

// Record returns record i; it is valid until the batch is Done.
func (b *Batch) Record(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

func (b *Batch) add(rec []byte) {
	b.buf = append(b.buf, rec...)
	b.ends = append(b.ends, len(b.buf))
	if len(rec) >= 16 {
		b.last = binary.LittleEndian.Uint64(rec[8:16])
	}
}

// batchBytes and batchRecords bound a batch; batchesPerRing bounds the
// memory a ring's records may hold before its reader waits (and the
// kernel's ring fills, counted, behind it).
const (
	batchBytes     = 256 << 10
	batchRecords   = 1024
	batchesPerRing = 16
)

// NewReader opens both rings. Start it (Run) before Attach so nothing
// produced at attach time waits in a ring nobody reads.
func (o *Objects) NewReader() (*Reader, error) {
	eff, err := ringbuf.NewReader(o.objs.Effects)
	if err != nil {
		return nil, fmt.Errorf("opening the effect ring: %w", err)
	}
	pay, err := ringbuf.NewReader(o.objs.Payloads)
	if err != nil {
		eff.Close()
		return nil, fmt.Errorf("opening the payload ring: %w", err)
	}
	r := &Reader{rings: []*ringbuf.Reader{eff, pay}, interval: o.cfg.WakeupInterval, lastWake: o.objs.LastWake,
		out: make(chan *Batch, 2*batchesPerRing)}
	for i, m := range []*ebpf.Map{o.objs.Effects, o.objs.Payloads} {
		r.files[i], r.waits[i] = pollable(m)
	}
	for i := range r.free {
		r.free[i] = make(chan *Batch, batchesPerRing)
		for j := 0; j < batchesPerRing; j++ {
			r.free[i] <- &Batch{Ring: i}
		}
	}
	return r, nil
}

// idlePoll bounds how long a reader that just went idle waits without a
// wakeup (a record may have raced its going idle); idleLong how long it
// waits after that.
const (
	idlePoll = 50 * time.Millisecond
	idleLong = time.Second
)

// quietPolls is how many empty polls in a row a reader makes before it
// goes idle (at the 2 ms default, 20 ms).
const quietPolls = 10

// Batches is where the readers hand their batches; it is closed once both
// have stopped (Close).
func (r *Reader) Batches() <-chan *Batch { return r.out }

// Done gives a batch back once every record of it has been handled: from
// then on the watermark counts its records as delivered.
func (r *Reader) Done(b *Batch) {
	n := int64(len(b.ends))
	if n > 0 {
		r.last[b.Ring].Store(b.last)
	}
	r.ringHandled[b.Ring].Add(uint64(n))
	r.ringBusy[b.Ring].Add(-n)
	r.handling.Add(-n)
	b.buf, b.ends, b.last = b.buf[:0], b.ends[:0], 0
	r.free[b.Ring] <- b
}

// Run starts one goroutine per ring.
//
// The kernel wakes a reader at most once per wakeup interval while records
// flow (bpf/common.h, wake_flags), so while records arrive the reader polls
// every interval, and it waits once a poll finds the rings quiet, having
// cleared the ring's last wakeup so that the next record wakes it at once
// (and, for a record that raced the clearing, it looks every idlePoll). A
// batch goes out whenever the ring has nothing more to give at once.
func (r *Reader) Run() {
	var running sync.WaitGroup
	for i, rd := range r.rings {
		r.wg.Add(1)
		running.Add(1)
		go func(i int, rd *ringbuf.Reader) {
			defer r.wg.Done()
			defer running.Done()
			r.read(i, rd)
		}(i, rd)
	}
	go func() {
		running.Wait()
		close(r.out)
	}()
}

func (r *Reader) read(i int, rd *ringbuf.Reader) {
	var rec ringbuf.Record
	var deadline time.Time
	got, armed := false, false
	idle := true    // waiting for a wakeup, not polling
	polled := false // the kernel was told we poll
	reset := false  // the kernel was told to wake us, and nothing came since
	quiet := 0      // polls in a row that found nothing
	var b *Batch
	flush := func() {
		if b != nil && b.Len() > 0 {
			r.out <- b
			b = nil
		}
	}
	defer flush()
	for {
		if b == nil {
			b = <-r.free[i]
		}
		poll := r.waits[i] != nil
		if poll {
			rd.SetDeadline(time.Unix(1, 0)) // take what is there; never wait in the kernel
		} else {
			rd.SetDeadline(deadline)
		}
		err := rd.ReadInto(&rec)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			flush()
			if poll && (deadline.IsZero() || time.Now().Before(deadline)) {
				if r.wait(i, deadline) == nil {
					continue // records came
				}
				if r.closed.Load() {
					continue // the next read says so
				}
			}
			switch {
			case got:
				deadline, got, quiet = time.Now().Add(r.interval), false, 0
			case armed:
				// wait, though not for long: a record whose program read
				// the last wakeup just before the reset may still have
				// been told not to wake us
				deadline, armed, idle = time.Now().Add(idlePoll), false, true
			case reset:
				// idle, and still nothing: the next record wakes us
				deadline, idle = time.Now().Add(idleLong), true
			case quiet < quietPolls:
				// keep polling a while: records that come a few ms apart
				// (many servers, a call each now and then) would each
				// pay for a wakeup, and the reader for going idle
				quiet++
				deadline = time.Now().Add(r.interval)
			default:
				// about to wait: the next record must wake us. A record
				// written in the last interval was not told to
				// (wake_flags), and one may have been written just after
				// this poll: clear the ring's last wakeup so any record
				// from now on wakes us, then look once more for one from
				// before
				r.resetWake(i)
				reset, polled = true, false
				deadline, armed = time.Now(), true
			}
			continue
		}
		armed, reset = false, false
		if err != nil {
			if !errors.Is(err, ringbuf.ErrClosed) {
				r.errMu.Lock()
				r.err = errors.Join(r.err, fmt.Errorf("reading ring %d: %w", i, err))
				r.errMu.Unlock()
			}
			return
		}
		r.handling.Add(1)
		r.ringBusy[i].Add(1)
		got = true
		if !polled {
			// poll every interval while records flow: the kernel need no
			// longer wake us
			r.polling(i)
			polled = true
		}
		if idle {
			deadline, idle = time.Now().Add(r.interval), false
		}
		b.add(rec.RawSample)
		if b.Len() >= batchRecords || len(b.buf) >= batchBytes || r.avail(i) == 0 {
			flush()
		}
	}
}

// Drain waits until both rings have stayed empty, with every record read
// handed on and Done, for quiet, or until max. Use it after the hooks are
// gone, before Close, so the last records are read.
func (r *Reader) Drain(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	emptySince := time.Time{}
	for time.Now().Before(deadline) {
		if !r.Empty() {
			emptySince = time.Time{}
		} else if emptySince.IsZero() {
			emptySince = time.Now()
		} else if time.Since(emptySince) >= quiet {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Empty says whether both rings are empty right now, with nothing read
// that is not yet Done.
func (r *Reader) Empty() bool {
	if r.handling.Load() > 0 {
		return false // a record left a ring and is on its way
	}
	for i := range r.rings {
		if r.avail(i) > 0 {
			return false
		}
	}
	return true
}

// avail is how many bytes ring i holds (0 once the reader is closed: the
// ring is gone).
func (r *Reader) avail(i int) int {
	r.ringMu.RLock()
	defer r.ringMu.RUnlock()
	if r.closed.Load() {
		return 0
	}
	return r.rings[i].AvailableBytes()
}

// Close stops the readers and waits for them; the consumer must keep
// taking batches (and giving them back) until Batches is closed.
func (r *Reader) Close() error {
	r.ringMu.Lock()
	r.closed.Store(true)
	r.ringMu.Unlock()
	var errs []error
	for _, rd := range r.rings {
		errs = append(errs, rd.Close())
	}
	for _, f := range r.files {
		if f != nil {
			f.Close() // wakes a reader parked in wait
		}
	}
	r.wg.Wait()
	r.errMu.Lock()
	errs = append(errs, r.err)
	r.errMu.Unlock()
	return errors.Join(errs...)
}

// Watermark is a kernel time (boot ns) before which no record can still
// come, per ring, the earliest of the two. A ring that holds records, or
// whose records are on their way, has given every record up to the last
// one Done. A ring found empty, with nothing on its way and nothing Done in
// between, at two calls in a row, has given everything written before the
// first of them (a record taken from a ring is counted within moments, not
// a whole interval). Otherwise an idle ring holds the watermark at its last
// record: events wait (for the ordering window at most) rather than risk
// going out before an earlier one. Call it from the goroutine that calls
// Done.
func (r *Reader) Watermark(now uint64) uint64 {
	wm := now
	for i := range r.rings {
		ring := r.last[i].Load()
		if r.ringBusy[i].Load() == 0 && r.avail(i) == 0 {
			n := r.ringHandled[i].Load()
			if r.ringQuietAt[i] != 0 && r.ringQuietN[i] == n {
				ring = max(ring, r.ringQuietAt[i]) // quiet since the last look
			}
			r.ringQuietAt[i], r.ringQuietN[i] = now, n
		} else {
			r.ringQuietAt[i] = 0
		}
		wm = min(wm, ring)
	}
	return wm
}

// Fill is how full each ring is (0..1), by name.
func (r *Reader) Fill() map[string]float64 {
	out := map[string]float64{}
	r.ringMu.RLock()
	defer r.ringMu.RUnlock()
	if r.closed.Load() {
		return out
	}
	for i, rd := range r.rings {
		name := [...]string{"effects", "payloads"}[i%2]
		if size := rd.BufferSize(); size > 0 {
			out[name] = float64(rd.AvailableBytes()) / float64(size)
		}
	}
	return out
}

// RunFunc starts the readers and a goroutine that hands each record to fn,
// one at a time, in ring order per ring: for tests and tools that need no
// pipeline.
func (r *Reader) RunFunc(fn func(rec []byte)) {
	r.Run()
	go func() {
		for b := range r.out {
			for i := 0; i < b.Len(); i++ {
				fn(b.Record(i))
			}
			r.Done(b)
		}
	}()
}
