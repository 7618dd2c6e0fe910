package correlate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
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

// seeTool records a tool of a server and returns the hash first seen for it
// ("" if new), the other servers that declare a tool of that name, and the
// names of the other servers' tools.
func (s *Store) seeTool(server string, t decode.ToolDef, at time.Time) (string, []string, []string) {
	if s == nil {
		return "", []string{}, []string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tools := s.data.Tools[server]
	if tools == nil {
		tools = map[string]ToolRecord{}
		s.data.Tools[server] = tools
	}
	rec, ok := tools[t.Name]
	prev := ""
	if ok {
		prev = rec.Hash
		if rec.LastHash != t.Hash {
			rec.LastHash = t.Hash
			tools[t.Name] = rec
			s.dirty = true
		}
	} else {
		tools[t.Name] = ToolRecord{Hash: t.Hash, Description: t.Description, FirstSeen: at, LastHash: t.Hash}
		s.dirty = true
	}
	shadows, others := []string{}, []string{}
	for other, ts := range s.data.Tools {
		if other == server {
			continue
		}
		if _, ok := ts[t.Name]; ok {
			shadows = append(shadows, other)
		}
		for n := range ts {
			others = append(others, n)
		}
	}
	sort.Strings(shadows)
	sort.Strings(others)
	return prev, shadows, others
}

// Export returns the baselines (of one server key, or all).
func (s *Store) Export(server string) map[string]*Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]*Profile{}
	for k, p := range s.data.Baselines {
		if server == "" || p.Server == server {
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
		if server == "" || p.Server == server {
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
