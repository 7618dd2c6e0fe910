package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// Reader reads the effect and payload rings. Records of both are handed to
// one callback, one at a time, so consumers see a serial stream.
type Reader struct {
	rings    []*ringbuf.Reader
	interval time.Duration
	mu       sync.Mutex
	wg       sync.WaitGroup
	errMu    sync.Mutex
	err      error
	handling atomic.Int64  // records read from a ring, not yet handled
	handled  atomic.Uint64 // records handled, ever
	// per ring: records being handled, and handled ever
	ringBusy    [2]atomic.Int64
	ringHandled [2]atomic.Uint64
	ringQuietAt [2]uint64 // when the ring was last found quiet (0: not)
	ringQuietN  [2]uint64 // ringHandled then
	closed      atomic.Bool
	last        [2]atomic.Uint64 // per ring: the kernel time of the last record handled
	lastWake    *ebpf.Map        // the kernel's last forced wakeup, per ring
	wakeErr     atomic.Bool      // resetting it failed (reported once)
}

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
	return &Reader{rings: []*ringbuf.Reader{eff, pay}, interval: o.cfg.WakeupInterval, lastWake: o.objs.LastWake}, nil
}

// idlePoll bounds how long an idle reader waits without a wakeup.
const idlePoll = 50 * time.Millisecond

// resetWake makes the next record of ring i wake its reader at once.
func (r *Reader) resetWake(i int) {
	if r.lastWake == nil {
		return
	}
	if err := r.lastWake.Update(uint32(i), uint64(0), ebpf.UpdateAny); err != nil && r.wakeErr.CompareAndSwap(false, true) {
		// records still come within idlePoll: said once, not per poll
		r.errMu.Lock()
		r.err = errors.Join(r.err, fmt.Errorf("resetting ring %d's wakeup: %w", i, err))
		r.errMu.Unlock()
	}
}

// Run starts one goroutine per ring. fn gets each raw record; the slice is
// reused after fn returns.
//
// The kernel wakes a reader at most once per wakeup interval while records
// flow (bpf/common.h, wake_flags), so while records arrive the reader polls
// every interval, and it waits once a poll finds the rings quiet, having
// cleared the ring's last wakeup so that the next record wakes it at once
// (and, for a record that raced the clearing, it looks every idlePoll).
func (r *Reader) Run(fn func(b []byte)) {
	for i, rd := range r.rings {
		r.wg.Add(1)
		go func(i int, rd *ringbuf.Reader) {
			defer r.wg.Done()
			var rec ringbuf.Record
			var deadline time.Time
			got, armed := false, false
			idle := true // waiting for a wakeup, not polling
			for {
				rd.SetDeadline(deadline)
				err := rd.ReadInto(&rec)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					switch {
					case got:
						deadline, got = time.Now().Add(r.interval), false
					case !armed:
						// about to wait: the next record must wake us. A
						// record written in the last interval was not told
						// to (wake_flags), and one may have been written
						// just after this poll: clear the ring's last
						// wakeup so any record from now on wakes us, then
						// look once more for one from before
						r.resetWake(i)
						deadline, armed = time.Now(), true
					default:
						// wait, though not for ever: a record whose program
						// read the last wakeup just before the reset may
						// still have been told not to wake us
						deadline, armed, idle = time.Now().Add(idlePoll), false, true
					}
					continue
				}
				armed = false
				if err != nil {
					if errors.Is(err, ringbuf.ErrClosed) {
						return
					}
					r.errMu.Lock()
					r.err = errors.Join(r.err, fmt.Errorf("reading ring %d: %w", i, err))
					r.errMu.Unlock()
					return
				}
				r.handling.Add(1)
				r.ringBusy[i].Add(1)
				got = true
				if idle {
					// woken: poll every interval while records flow (the
					// kernel does not wake us for each)
					deadline, idle = time.Now().Add(r.interval), false
				}
				r.mu.Lock()
				if len(rec.RawSample) >= 16 {
					r.last[i].Store(binary.LittleEndian.Uint64(rec.RawSample[8:16]))
				}
				fn(rec.RawSample)
				r.handled.Add(1)
				r.ringHandled[i].Add(1)
				r.ringBusy[i].Add(-1)
				r.handling.Add(-1)
				r.mu.Unlock()
			}
		}(i, rd)
	}
}

// Do runs fn while no record is being handled, so fn may share the
// callback's state (flush a decoder, read its counters).
func (r *Reader) Do(fn func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn()
}

// Drain waits until both rings have stayed empty for quiet, or until max.
// Use it after the traced process ended, before Close, so its last records
// are read.
func (r *Reader) Drain(quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	emptySince := time.Time{}
	for time.Now().Before(deadline) {
		empty := true
		for _, rd := range r.rings {
			if rd.AvailableBytes() > 0 {
				empty = false
			}
		}
		if !empty {
			emptySince = time.Time{}
		} else if emptySince.IsZero() {
			emptySince = time.Now()
		} else if time.Since(emptySince) >= quiet {
			// The ring is empty, but the last record may still be in fn.
			r.mu.Lock()
			r.mu.Unlock() //nolint:staticcheck // a barrier: wait for the callback in flight
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Empty says whether both rings are empty right now.
func (r *Reader) Empty() bool {
	if r.handling.Load() > 0 {
		return false // a record left a ring and is on its way to the callback
	}
	for _, rd := range r.rings {
		if rd.AvailableBytes() > 0 {
			return false
		}
	}
	return true
}

// Close stops the readers and waits for them.
func (r *Reader) Close() error {
	r.closed.Store(true)
	var errs []error
	for _, rd := range r.rings {
		errs = append(errs, rd.Close())
	}
	r.wg.Wait()
	r.errMu.Lock()
	errs = append(errs, r.err)
	r.errMu.Unlock()
	return errors.Join(errs...)
}

// Watermark is a kernel time (boot ns) before which no record can still
// come, per ring, the earliest of the two. A ring that holds records, or
// is being read, has given every record up to the last one it handled. A
// ring found empty, with nothing on its way and no record handled in
// between, at two calls in a row, has given everything written before the
// first of them (a reader that took a record counts it within moments, not
// a whole interval). Otherwise an idle ring holds the watermark at its last
// record: events wait (for the ordering window at most) rather than risk
// going out before an earlier one. Call it from Do.
func (r *Reader) Watermark(now uint64) uint64 {
	wm := now
	for i, rd := range r.rings {
		ring := r.last[i].Load()
		if r.ringBusy[i].Load() == 0 && rd.AvailableBytes() == 0 {
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
