package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Inventory is what a host says of itself, with its heartbeat.
type Inventory struct {
	Host       string    `json:"host"`
	Key        string    `json:"key"` // its nkey
	Time       time.Time `json:"time"`
	Version    string    `json:"version"`
	Since      time.Time `json:"since"`
	Servers    []Server  `json:"servers"`
	Contained  []string  `json:"contained"`
	Alerts     uint64    `json:"alerts"`
	Indicators int       `json:"indicators_in_force"`
}

// Server is a server as the fleet sees it: its identity, not its data.
type Server struct {
	Name     string `json:"name"`
	Identity string `json:"identity"`
	Calls    uint64 `json:"calls"`
	Tainted  bool   `json:"tainted"`
}

// hostKey is a host's key in the inventory bucket.
func hostKey(host string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, host)
}

// Heartbeat writes this host's inventory (the bucket forgets a host
// silent for 10 minutes).
func (f *Fleet) Heartbeat(ctx context.Context, inv Inventory) error {
	inv.Host, inv.Key, inv.Time = f.o.Host, f.pub, time.Now().UTC()
	b, err := json.Marshal(inv)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		_, err = f.inv.Put(ctx, hostKey(f.o.Host), b)
		if !transient(err) || attempt == 40 {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Inventories reads every host's last inventory.
func Inventories(ctx context.Context, nc *nats.Conn) (out []Inventory, err error) {
	err = retry(ctx, func() error {
		var e error
		out, e = inventories(ctx, nc)
		return e
	})
	return out, err
}

func inventories(ctx context.Context, nc *nats.Conn) ([]Inventory, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, InventoryBucket)
	if err != nil {
		return nil, fmt.Errorf("no fleet bucket %s on this NATS (is a daemon with fleet.enabled connected?): %w", InventoryBucket, err)
	}
	keys, err := kv.Keys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Inventory
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var inv Inventory
		if json.Unmarshal(e.Value(), &inv) == nil {
			out = append(out, inv)
		}
	}
	return out, nil
}
