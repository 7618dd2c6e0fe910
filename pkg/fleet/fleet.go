package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// Buckets the fleet uses.
const (
	IOCBucket       = "MCPSEC_IOC"
	InventoryBucket = "MCPSEC_FLEET"
)

// Options configure a host's membership.
type Options struct {
	Host     string
	Replicas int           // of the buckets (3 on a three-node cluster)
	TTL      time.Duration // how long an indicator lives (default 30 days)
	Trust    Trust
	// KeyFile is the host's nkey seed (made at the first start).
	KeyFile string
}

// Fleet is one host's view of the fleet.
type Fleet struct {
	o    Options
	kp   nkeys.KeyPair
	pub  string
	js   jetstream.JetStream
	nc   *nats.Conn
	ioc  jetstream.KeyValue
	inv  jetstream.KeyValue
	base jetstream.KeyValue
	// counters
	Published, Applied, Ignored, Withdrawn, Errors, Rewatched, Shared atomic.Uint64
	mu                                                                sync.Mutex
	taken                                                             map[string]*Indicator // key -> trusted indicator in force
}

// Open joins the fleet on a connection: the host's key, the buckets
// (created if missing).
func Open(ctx context.Context, nc *nats.Conn, o Options) (*Fleet, error) {
	if o.TTL == 0 {
		o.TTL = 30 * 24 * time.Hour
	}
	kp, err := loadKey(o.KeyFile)
	if err != nil {
		return nil, err
	}
	pub, _ := kp.PublicKey()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	f := &Fleet{o: o, kp: kp, pub: pub, js: js, nc: nc, taken: map[string]*Indicator{}}
	rep := max(1, o.Replicas)
	if f.ioc, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: IOCBucket, History: 5, TTL: o.TTL, Replicas: rep,
		Description: "MCP security sensor: indicators shared by the fleet"}); err != nil {
		return nil, fmt.Errorf("the indicator bucket %s: %w", IOCBucket, err)
	}
	if f.inv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: InventoryBucket, History: 1, TTL: 10 * time.Minute,
		Replicas: rep, Description: "MCP security sensor: each host's inventory and heartbeat"}); err != nil {
		return nil, fmt.Errorf("the inventory bucket %s: %w", InventoryBucket, err)
	}
	if f.base, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: BaselineBucket, History: 1, TTL: o.TTL,
		Replicas: rep, Description: "MCP security sensor: what the fleet learned of each server (sets, no payloads)"}); err != nil {
		return nil, fmt.Errorf("the baseline bucket %s: %w", BaselineBucket, err)
	}
	return f, nil
}

// PublicKey is the host's nkey: what other hosts list to trust it.
func (f *Fleet) PublicKey() string { return f.pub }

// loadKey reads the host's nkey seed, or makes one (0600).
func loadKey(path string) (nkeys.KeyPair, error) {
	if b, err := os.ReadFile(path); err == nil {
		kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
		if err != nil {
			return nil, fmt.Errorf("fleet key %s: %w", path, err)
		}
		return kp, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	kp, err := nkeys.CreateServer()
	if err != nil {
		return nil, err
	}
	seed, _ := kp.Seed()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("fleet key: %w", err)
	}
	return kp, nil
}

// Report adds this host's signed report of an indicator: a new key, or
// one more host on an existing one (compare-and-set, retried on a race).
func (f *Fleet) Report(ctx context.Context, typ, value, rule, severity, alertID string) error {
	key := KeyOf(typ, value)
	r := Report{Host: f.o.Host, Time: time.Now().UTC(), AlertID: alertID}
	if err := sign(f.kp, typ, value, rule, "report", &r); err != nil {
		return err
	}
	for attempt := 0; attempt < 40; attempt++ {
		e, err := f.ioc.Get(ctx, key)
		if transient(err) {
			time.Sleep(250 * time.Millisecond) // a leader being elected, a node going away
			continue
		}
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || (err == nil && e.Operation() != jetstream.KeyValuePut):
			in := Indicator{Type: typ, Value: value, Rule: rule, Severity: severity, FirstHost: f.o.Host, FirstSeen: r.Time, Reports: []Report{r}}
			b, _ := json.Marshal(in)
			if _, err = f.ioc.Create(ctx, key, b); err == nil {
				f.Published.Add(1)
				return nil
			}
		case err != nil:
			f.Errors.Add(1)
			return fmt.Errorf("reading indicator %s: %w", key, err)
		default:
			var in Indicator
			if err := json.Unmarshal(e.Value(), &in); err != nil {
				return fmt.Errorf("indicator %s: %w", key, err)
			}
			for _, x := range in.Reports {
				if x.Key == r.Key && (in.Withdrawn == nil || x.Time.After(in.Withdrawn.Time)) {
					return nil // this host said so already (since any withdrawal)
				}
			}
			in.Reports = append(in.Reports, r)
			b, _ := json.Marshal(in)
			if _, err = f.ioc.Update(ctx, key, b, e.Revision()); err == nil {
				f.Published.Add(1)
				return nil
			}
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond) // another host wrote first
	}
	f.Errors.Add(1)
	return fmt.Errorf("indicator %s: too many concurrent writers", key)
}

// Withdraw takes an indicator back for the whole fleet (a false-positive
// verdict), signed by this host.
func (f *Fleet) Withdraw(ctx context.Context, typ, value, reason string) error {
	key := KeyOf(typ, value)
	for attempt := 0; attempt < 40; attempt++ {
		e, err := f.ioc.Get(ctx, key)
		if transient(err) {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading indicator %s: %w", key, err)
		}
		var in Indicator
		if err := json.Unmarshal(e.Value(), &in); err != nil {
			return err
		}
		if in.Type != typ || in.Value != value {
			return fmt.Errorf("indicator %s holds %s %s, not %s %s: not signed", key, in.Type, in.Value, typ, value)
		}
		w := Report{Host: f.o.Host, Time: time.Now().UTC(), Reason: reason}
		if err := sign(f.kp, typ, value, in.Rule, "withdraw", &w); err != nil {
			return err
		}
		in.Withdrawn = &w
		b, _ := json.Marshal(in)
		if _, err = f.ioc.Update(ctx, key, b, e.Revision()); err == nil {
			f.Withdrawn.Add(1)
			return nil
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
	return fmt.Errorf("indicator %s: too many concurrent writers", key)
}

// transient errors pass when the cluster settles: no leader yet, a node
// gone, a request timed out.
func transient(err error) bool {
	return err != nil && (errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrConnectionReconnecting))
}

// Change is an indicator taken into force (Add) or out of it.
type Change struct {
	Add       bool
	Indicator *Indicator
	Why       string // why not taken, or withdrawn
}

// Watch follows the bucket until ctx ends, calling fn with each change of
// what is in force under the trust setting (the current indicators
// first). It returns when the watch is set up.
func (f *Fleet) Watch(ctx context.Context, fn func(Change)) error {
	w, err := f.ioc.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watching %s: %w", IOCBucket, err)
	}
	go func() {
		// The watch is made again at once after a reconnect (a node gone),
		// or when the bucket holds a revision it has not delivered for a
		// second (its stream's leader moved): rather than when its consumer
		// notices missed heartbeats, many seconds later. What it replays is
		// applied idempotently.
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		reconnects := f.nc.Stats().Reconnects
		var seen, behind uint64
		defer func() { _ = w.Stop() }()
		rewatch := func() {
			if nw, err := f.ioc.WatchAll(ctx); err == nil {
				_ = w.Stop()
				w = nw
				f.Rewatched.Add(1)
			}
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if n := f.nc.Stats().Reconnects; n != reconnects && f.nc.IsConnected() {
					reconnects = n
					rewatch()
					continue
				}
				last := f.lastRevision(ctx)
				switch {
				case last <= seen:
					behind = 0
				case behind != 0 && last >= behind:
					rewatch() // a second behind
					behind = 0
				default:
					behind = last
				}
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue // the end of the initial values
				}
				seen = max(seen, e.Revision())
				f.apply(e, fn)
			}
		}
	}()
	return nil
}

// lastRevision is the bucket's last revision (0 if it cannot be read).
func (f *Fleet) lastRevision(ctx context.Context) uint64 {
	c, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
	defer cancel()
	st, err := f.ioc.Status(c)
	if err != nil {
		return 0
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
		return bs.StreamInfo().State.LastSeq
	}
	return 0
}

func (f *Fleet) apply(e jetstream.KeyValueEntry, fn func(Change)) {
	key := e.Key()
	f.mu.Lock()
	old := f.taken[key]
	f.mu.Unlock()
	drop := func(why string) {
		if old == nil {
			return
		}
		f.mu.Lock()
		delete(f.taken, key)
		f.mu.Unlock()
		f.Withdrawn.Add(1)
		fn(Change{Indicator: old, Why: why})
	}
	if e.Operation() != jetstream.KeyValuePut {
		drop("deleted or expired")
		return
	}
	var in Indicator
	if err := json.Unmarshal(e.Value(), &in); err != nil || KeyOf(in.Type, in.Value) != key {
		f.Errors.Add(1) // a record under another's key is no one's
		return
	}
	ok, why := f.o.Trust.Trusted(&in)
	if !ok {
		if old == nil {
			f.Ignored.Add(1)
		}
		drop(why)
		return
	}
	f.mu.Lock()
	f.taken[key] = &in
	f.mu.Unlock()
	if old == nil {
		f.Applied.Add(1)
	}
	fn(Change{Add: true, Indicator: &in})
}

// Lookup finds an indicator in force by type and value.
func (f *Fleet) Lookup(typ, value string) (*Indicator, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.taken[KeyOf(typ, value)]
	return in, ok
}

// MaxPorts is how many ports of one address the kernel refuses; the
// others the rules still judge (the alert names the indicator).
const MaxPorts = 8

// Ports are the ports of the destination indicators in force on an
// address, the most recent MaxPorts (anyPort when one names the address
// without a port), n how many indicators, over how many ports were left
// out. Past MaxPorts the address is not refused whole: a server that
// touches many ports of one address must not make the fleet cut every
// server here off it (loopback, a shared front end).
func (f *Fleet) Ports(prefix netip.Prefix) (ports []uint16, anyPort bool, n, over int) {
	var ins []*Indicator
	for _, in := range f.InForce() {
		if p, _, err := in.Prefix(); err == nil && p == prefix {
			ins = append(ins, in)
		}
	}
	slices.SortFunc(ins, func(a, b *Indicator) int { return b.FirstSeen.Compare(a.FirstSeen) })
	for _, in := range ins {
		_, port, _ := in.Prefix()
		n++
		switch {
		case port == 0:
			anyPort = true
		case slices.Contains(ports, port):
		case len(ports) < MaxPorts:
			ports = append(ports, port)
		default:
			over++
		}
	}
	slices.Sort(ports)
	return ports, anyPort, n, over
}

// InForce lists the indicators in force.
func (f *Fleet) InForce() []*Indicator {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]*Indicator, 0, len(f.taken))
	for _, in := range f.taken {
		out = append(out, in)
	}
	return out
}

// retry runs fn until it succeeds or fails for good, riding out a cluster
// settling (up to 15 s).
func retry(ctx context.Context, fn func() error) error {
	var err error
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(250 * time.Millisecond) {
		if err = fn(); err == nil || !(transient(err) || errors.Is(err, context.DeadlineExceeded)) {
			return err
		}
	}
	return err
}

// All reads every indicator in the bucket (for `sensor fleet indicators`).
func All(ctx context.Context, nc *nats.Conn) (out []Indicator, err error) {
	err = retry(ctx, func() error {
		var e error
		out, e = all(ctx, nc)
		return e
	})
	return out, err
}

func all(ctx context.Context, nc *nats.Conn) ([]Indicator, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, IOCBucket)
	if err != nil {
		return nil, fmt.Errorf("no fleet bucket %s on this NATS (is a daemon with fleet.enabled connected?): %w", IOCBucket, err)
	}
	var out []Indicator
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var in Indicator
		if json.Unmarshal(e.Value(), &in) == nil {
			out = append(out, in)
		}
	}
	return out, nil
}
