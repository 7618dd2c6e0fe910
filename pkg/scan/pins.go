package scan

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pins are the definitions each entry listed at its first scan: a later
// scan that lists something else reports it (a rug pull, unless the
// server was upgraded on purpose: `sensor scan --repin` takes the new
// ones).
type Pins struct {
	path string
	// Servers: entry key -> "kind name" -> pin
	Servers map[string]map[string]Pin `json:"servers"`
}

// Pin is one definition's hash and when it was first seen.
type Pin struct {
	Hash  string    `json:"hash"`
	Since time.Time `json:"since"`
}

// OpenPins reads the pins file (none yet is an empty set).
func OpenPins(path string) (*Pins, error) {
	p := &Pins{path: path, Servers: map[string]map[string]Pin{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return p, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the scan's pins: %w", err)
	}
	if err := json.Unmarshal(b, p); err != nil {
		return nil, fmt.Errorf("%s: not a pins file (%v): remove it to pin afresh", path, err)
	}
	if p.Servers == nil {
		p.Servers = map[string]map[string]Pin{}
	}
	return p, nil
}

// key names an entry across scans: its client, name and command line.
func key(e Entry) string {
	return e.Client + "\x00" + e.Name + "\x00" + e.Command + " " + strings.Join(e.Args, " ") + e.URL
}

// Check compares what s listed with its pins, pins what is new, and, with
// repin, takes changed definitions as the new pins.
func (p *Pins) Check(s Listed, repin bool, now time.Time) []Finding {
	k := key(s.Entry)
	m := p.Servers[k]
	if m == nil {
		m = map[string]Pin{}
		p.Servers[k] = m
	}
	var out []Finding
	for _, d := range s.Defs {
		id := d.Kind + " " + d.Name
		old, ok := m[id]
		switch {
		case !ok:
			m[id] = Pin{Hash: d.Hash, Since: now}
		case old.Hash != d.Hash && repin:
			m[id] = Pin{Hash: d.Hash, Since: now}
		case old.Hash != d.Hash:
			out = append(out, finding(s.Entry, "definition-changed", "high",
				fmt.Sprintf("%s's %s changed since it was pinned on %s", s.Entry.Name, id, old.Since.Format(time.DateOnly)),
				fmt.Sprintf("pinned %s, now %s", old.Hash[:12], d.Hash[:12]),
				"read the new definition; if the change is expected, scan again with --repin"))
		}
	}
	return out
}

// Save writes the pins.
func (p *Pins) Save() error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p.path), 0o700); err != nil {
		return fmt.Errorf("saving the scan's pins: %w", err)
	}
	tmp := p.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("saving the scan's pins: %w", err)
	}
	return os.Rename(tmp, p.path)
}
