package correlate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mcpsec/sensor/pkg/decode"
)

// Store keeps what must survive a restart: the first-seen definition of
// every tool (trust on first use) and the learned baselines, in one JSON
// file. A nil *Store keeps them in memory.
type Store struct {
	path  string
	mu    sync.Mutex
	data  storeData
	dirty bool
	mem   bool
}

type storeData struct {
	Version   int                              `json:"version"`
	Tools     map[string]map[string]ToolRecord `json:"tools"` // server key -> tool name
	Baselines map[string]*Profile              `json:"baselines"`
}

// ToolRecord is a tool as first seen, and as last seen.
type ToolRecord struct {
	Hash        string    `json:"hash"`
	Description string    `json:"description,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastHash    string    `json:"last_hash,omitempty"`
}

const storeVersion = 1

// StoreFile is the store's file name in the state directory.
const StoreFile = "correlate.json"

// OpenStore reads the store in dir (created if missing); dir "" keeps
// everything in memory.
func OpenStore(dir string) (*Store, error) {
	s := &Store{data: storeData{Version: storeVersion, Tools: map[string]map[string]ToolRecord{}, Baselines: map[string]*Profile{}}}
	if dir == "" {
		s.mem = true
		return s, nil
	}
	s.path = filepath.Join(dir, StoreFile)
	b, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		return s, nil
	case err != nil:
		return nil, err
	}
	var d storeData
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to start afresh)", s.path, err)
	}
	if d.Version != storeVersion {
		return nil, fmt.Errorf("%s: version %d, this sensor reads %d", s.path, d.Version, storeVersion)
	}
	if d.Tools != nil {
		s.data.Tools = d.Tools
	}
	if d.Baselines != nil {
		s.data.Baselines = d.Baselines
	}
	return s, nil
}

// Save writes the store if it changed (atomically: a crash leaves the old
// file or the new one).
func (s *Store) Save() error {
	if s == nil || s.mem {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dirty {
		return nil
	}
	b, err := json.MarshalIndent(&s.data, "", " ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return err
	}
	s.dirty = false
	return nil
}

// seeTool records a tool of a server (by identity key) and returns the
// hash first seen for it ("" if new).
func (s *Store) seeTool(server string, t decode.ToolDef, at time.Time) string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tools := s.data.Tools[server]
	if tools == nil {
		tools = map[string]ToolRecord{}
		s.data.Tools[server] = tools
	}
	rec, ok := tools[t.Name]
	if !ok {
		tools[t.Name] = ToolRecord{Hash: t.Hash, Description: t.Description, FirstSeen: at, LastHash: t.Hash}
		s.dirty = true
		return ""
	}
	if rec.LastHash != t.Hash {
		rec.LastHash = t.Hash
		tools[t.Name] = rec
		s.dirty = true
	}
	return rec.Hash
}

// pause stops a server's baselines (by identity key) from learning.
func (s *Store) pause(server string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.data.Baselines {
		if p.Server == server && !p.Paused {
			p.Paused = true
			s.dirty = true
		}
	}
}

// Export returns the baselines (of one server key, or all).
func (s *Store) Export(server string) map[string]*Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*Profile{}
	for k, p := range s.data.Baselines {
		if p.Is(server) {
			out[k] = p
		}
	}
	return out
}

// Reset forgets the baselines (of one server key, or all) so they learn
// again; it returns how many it forgot.
func (s *Store) Reset(server string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, p := range s.data.Baselines {
		if p.Is(server) {
			delete(s.data.Baselines, k)
			n++
		}
	}
	if n > 0 {
		s.dirty = true
	}
	return n
}

// Tools returns the tool records by server key.
func (s *Store) Tools() map[string]map[string]ToolRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]map[string]ToolRecord{}
	for k, v := range s.data.Tools {
		m := map[string]ToolRecord{}
		for n, r := range v {
			m[n] = r
		}
		out[k] = m
	}
	return out
}

// Is says whether the profile is of the server named s: by its identity
// key (npm:@scope/name), its printable name (@scope/name@1.2.3), or that
// name without the version; "" is every server.
func (p *Profile) Is(s string) bool {
	if s == "" || s == p.Server || s == p.Name {
		return true
	}
	if _, name, ok := strings.Cut(p.Server, ":"); ok && name == s {
		return true
	}
	return false
}
