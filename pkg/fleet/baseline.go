package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mcpsec/sensor/pkg/correlate"
)

// BaselineBucket holds what the fleet learned of each server identity.
const BaselineBucket = "MCPSEC_BASELINE"

func baselineKey(server, tool string) string {
	sum := sha256.Sum256([]byte(server + "\x00" + tool))
	return "b." + hex.EncodeToString(sum[:16])
}

// ShareBaselines merges this host's learned profiles into the fleet's:
// the union of each set (a count is the highest a host saw), this host
// added to who contributed. Unchanged summaries are not written again.
func (f *Fleet) ShareBaselines(ctx context.Context, sums []correlate.Summary) error {
	var errs []error
	for _, sm := range sums {
		if err := f.shareOne(ctx, sm); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", sm.Server, sm.Tool, err))
		}
	}
	return errors.Join(errs...)
}

func (f *Fleet) shareOne(ctx context.Context, sm correlate.Summary) error {
	key := baselineKey(sm.Server, sm.Tool)
	for attempt := 0; attempt < 40; attempt++ {
		e, err := f.base.Get(ctx, key)
		if transient(err) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		var cur correlate.Summary
		var rev uint64
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			if err := json.Unmarshal(e.Value(), &cur); err != nil {
				return err
			}
			rev = e.Revision()
		}
		merged, changed := merge(cur, sm, f.o.Host)
		if !changed {
			return nil
		}
		b, _ := json.Marshal(merged)
		if rev == 0 {
			_, err = f.base.Create(ctx, key, b)
		} else {
			_, err = f.base.Update(ctx, key, b, rev)
		}
		if err == nil {
			f.Shared.Add(1)
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return errors.New("too many concurrent writers")
}

// merge adds a host's summary to the fleet's; changed says whether it
// added anything.
func merge(cur, sm correlate.Summary, host string) (correlate.Summary, bool) {
	changed := cur.Server == ""
	if changed {
		cur = correlate.Summary{Server: sm.Server, Tool: sm.Tool}
	}
	if !slices.Contains(cur.Hosts, host) {
		cur.Hosts = append(cur.Hosts, host)
		changed = true
	}
	union := func(dst *map[string]int, src map[string]int) {
		if *dst == nil {
			*dst = map[string]int{}
		}
		for k, n := range src {
			if (*dst)[k] < n {
				(*dst)[k] = n
				changed = true
			}
		}
	}
	union(&cur.Types, sm.Types)
	union(&cur.Paths, sm.Paths)
	union(&cur.Dests, sm.Dests)
	union(&cur.Exes, sm.Exes)
	if sm.Events > cur.Events {
		cur.Events = sm.Events
	}
	return cur, changed
}

// WatchBaselines calls fn with each summary the fleet holds, now and as
// they change, until ctx ends.
func (f *Fleet) WatchBaselines(ctx context.Context, fn func(correlate.Summary)) error {
	w, err := f.base.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", BaselineBucket, err)
	}
	go func() {
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				var sm correlate.Summary
				if json.Unmarshal(e.Value(), &sm) == nil {
					fn(sm)
				}
			}
		}
	}()
	return nil
}
