package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/mcpsec/sensor/pkg/correlate"
)

// BaselineBucket holds what the fleet learned of each server identity.
const BaselineBucket = "MCPSEC_BASELINE"

func baselineKey(server, tool, pub string) string {
	sum := sha256.Sum256([]byte(server + "\x00" + tool))
	return "b." + hex.EncodeToString(sum[:16]) + "." + pub[:16]
}

// signedSummary is one host's summary, signed with its nkey.
type signedSummary struct {
	Summary correlate.Summary `json:"summary"`
	Host    string            `json:"host"`
	Key     string            `json:"key"`
	Sig     string            `json:"sig"`
}

// ShareBaselines writes this host's learned profiles, each under a key of
// its own and signed; the hosts that take them merge them (the union of
// each set) under their trust setting. Unchanged summaries are not
// written again.
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
	sm.Hosts = []string{f.o.Host}
	body, _ := json.Marshal(sm)
	sig, err := f.kp.Sign(body)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(signedSummary{Summary: sm, Host: f.o.Host, Key: f.pub, Sig: base64.RawStdEncoding.EncodeToString(sig)})
	key := baselineKey(sm.Server, sm.Tool, f.pub)
	for attempt := 0; attempt < 40; attempt++ {
		e, err := f.base.Get(ctx, key)
		if transient(err) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if err == nil {
			var cur signedSummary
			if json.Unmarshal(e.Value(), &cur) == nil && reflect.DeepEqual(cur.Summary, sm) {
				return nil
			}
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
		if _, err = f.base.Put(ctx, key, b); err == nil {
			f.Shared.Add(1)
			return nil
		}
		if !transient(err) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return errors.New("the cluster did not take it")
}

// merge adds a host's summary to the fleet's.
func merge(cur, sm correlate.Summary, host string) correlate.Summary {
	if cur.Server == "" {
		cur = correlate.Summary{Server: sm.Server, Name: sm.Name, Tool: sm.Tool}
	}
	if !slices.Contains(cur.Hosts, host) {
		cur.Hosts = append(cur.Hosts, host)
	}
	union := func(dst *map[string]int, src map[string]int) {
		if *dst == nil {
			*dst = map[string]int{}
		}
		for k, n := range src {
			(*dst)[k] = max((*dst)[k], n)
		}
	}
	union(&cur.Types, sm.Types)
	union(&cur.Paths, sm.Paths)
	union(&cur.Dests, sm.Dests)
	union(&cur.Exes, sm.Exes)
	cur.Events = max(cur.Events, sm.Events)
	return cur
}

// WatchBaselines calls fn with the fleet's summary of each server (and
// tool): the union of the trusted hosts' signed summaries, now and as
// they change, until ctx ends. Unsigned, forged or untrusted summaries
// are left out (counted in Errors or Ignored).
func (f *Fleet) WatchBaselines(ctx context.Context, fn func(correlate.Summary)) error {
	w, err := f.base.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", BaselineBucket, err)
	}
	byServer := map[string]map[string]correlate.Summary{} // server+tool -> host key -> summary
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
				var ss signedSummary
				if json.Unmarshal(e.Value(), &ss) != nil || !f.trustedSummary(ss) {
					f.Ignored.Add(1)
					continue
				}
				id := ss.Summary.Server + "\x00" + ss.Summary.Tool
				if byServer[id] == nil {
					byServer[id] = map[string]correlate.Summary{}
				}
				byServer[id][ss.Key] = ss.Summary
				var merged correlate.Summary
				for _, k := range slices.Sorted(maps.Keys(byServer[id])) {
					merged = merge(merged, byServer[id][k], byServer[id][k].Hosts[0])
				}
				fn(merged)
			}
		}
	}()
	return nil
}

// trustedSummary: its signature is its key's, and that key is trusted.
func (f *Fleet) trustedSummary(ss signedSummary) bool {
	if len(f.o.Trust.Keys) > 0 && !contains(f.o.Trust.Keys, ss.Key) || len(ss.Summary.Hosts) != 1 || ss.Summary.Hosts[0] != ss.Host {
		return false
	}
	kp, err := nkeys.FromPublicKey(ss.Key)
	if err != nil {
		return false
	}
	sig, err := base64.RawStdEncoding.DecodeString(ss.Sig)
	if err != nil {
		return false
	}
	body, _ := json.Marshal(ss.Summary)
	return kp.Verify(body, sig) == nil
}
