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

// ToolRecord is a tool as pinned (first seen, or last approved), and as
// last seen.
type ToolRecord struct {
	Hash        string    `json:"hash"`
	Description string    `json:"description,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
	LastHash    string    `json:"last_hash,omitempty"`
	// Definition is the pinned definition as the server sent it; Last the
	// latest one that differs from it (for `sensor tools diff`).
	Definition json.RawMessage `json:"definition,omitempty"`
	Last       json.RawMessage `json:"last,omitempty"`
	Approved   time.Time       `json:"approved,omitzero"`
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
	unlock, err := lockFile(s.path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
	s.keepApprovals()
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

// ApproveFile approves in the store file of dir, read and written under
// its lock, so that a running sensor's save and this approval cannot undo
// each other.
func ApproveFile(dir, server, tool, hash string, at time.Time) ([]string, error) {
	path := filepath.Join(dir, StoreFile)
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	st, err := OpenStore(dir)
	if err != nil {
		return nil, err
	}
	done := st.Approve(server, tool, hash, at)
	if len(done) == 0 {
		return nil, nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := json.MarshalIndent(&st.data, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		return nil, err
	}
	return done, os.Rename(path+".tmp", path)
}

// keepApprovals takes from the file the approvals another process (sensor
// tools approve) made since this store was read, so that saving does not
// undo them.
func (s *Store) keepApprovals() {
	b, err := os.ReadFile(s.path)
	if err != nil {
		return
	}
	var d storeData
	if json.Unmarshal(b, &d) != nil {
		return
	}
	for server, tools := range d.Tools {
		for name, rec := range tools {
			mine, ok := s.data.Tools[server][name]
			if ok && rec.Approved.After(mine.Approved) {
				if mine.LastHash != rec.Hash {
					rec.LastHash, rec.Last = mine.LastHash, mine.Last
				}
				s.data.Tools[server][name] = rec
			}
		}
	}
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
		tools[t.Name] = ToolRecord{Hash: t.Hash, Description: t.Description, FirstSeen: at, LastHash: t.Hash, Definition: t.Raw}
		s.dirty = true
		return ""
	}
	if rec.LastHash != t.Hash {
		rec.LastHash = t.Hash
		rec.Last = nil
		if t.Hash != rec.Hash {
			rec.Last = t.Raw
		}
		tools[t.Name] = rec
		s.dirty = true
	}
	return rec.Hash
}

// Changed says whether a server's tool (by identity key) was pinned with
// another definition than the one of this hash: until a person approves
// it, the gateway keeps it from the model.
func (s *Store) Changed(server, tool, hash string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.data.Tools[server][tool]
	return ok && rec.Hash != hash
}

// Unapproved says whether a server's tool was last seen with another
// definition than its pinned one, and no one approved it.
func (s *Store) Unapproved(server, tool string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.data.Tools[server][tool]
	return ok && rec.LastHash != "" && rec.LastHash != rec.Hash
}

// Approve pins the definitions last seen of a server's tools (all of them
// if tool is ""; only if its last hash is hash, when hash is given: what
// the person reviewed), and returns the tools approved.
func (s *Store) Approve(server, tool, hash string, at time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, rec := range s.data.Tools[server] {
		if (tool != "" && name != tool) || rec.LastHash == "" || rec.LastHash == rec.Hash || (hash != "" && rec.LastHash != hash) {
			continue
		}
		rec.Hash, rec.Definition, rec.Last, rec.Approved = rec.LastHash, rec.Last, nil, at
		s.data.Tools[server][name] = rec
		out = append(out, name)
		s.dirty = true
	}
	return out
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
