package correlate

import (
	"maps"
	"net/netip"
	"strings"
	"time"
)

// Summary is a learned profile as the fleet shares it: the sets, no
// payload, and destinations as classes (loopback, private or public, and
// the port), not addresses.
type Summary struct {
	Server string         `json:"server"`
	Name   string         `json:"name,omitempty"` // the printable name (package@version) it was learned as
	Tool   string         `json:"tool,omitempty"`
	Hosts  []string       `json:"hosts"`
	Events int            `json:"events"`
	Types  map[string]int `json:"types"`
	Paths  map[string]int `json:"paths"`
	Dests  map[string]int `json:"dest_classes"`
	Exes   map[string]int `json:"exes"`
}

// DestClass is a destination's class: "class:loopback:443",
// "class:private:5432", "class:public:443" ("" for what is not ip:port).
func DestClass(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return ""
	}
	a := ap.Addr().Unmap()
	cls := "public"
	switch {
	case a.IsLoopback():
		cls = "loopback"
	case a.IsPrivate() || a.IsLinkLocalUnicast():
		cls = "private"
	}
	return "class:" + cls + ":" + itoa(int(ap.Port()))
}

// Learned are the profiles whose learning window has ended (and that
// containment did not pause), as summaries.
func (s *Store) Learned(learn time.Duration, now time.Time) []Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Summary
	for _, p := range s.data.Baselines {
		if p.Paused || p.Events == 0 || now.Sub(p.Since) < learn || strings.HasPrefix(p.Name, "fleet:") {
			continue
		}
		sm := Summary{Server: p.Server, Name: p.Name, Tool: p.Tool, Events: p.Events, Types: maps.Clone(p.Types), Paths: maps.Clone(p.Paths),
			Exes: maps.Clone(p.Exes), Dests: map[string]int{}}
		for d, n := range p.Dests {
			if c := DestClass(d); c != "" {
				sm.Dests[c] += n
			} else if strings.HasPrefix(d, "class:") {
				sm.Dests[d] += n
			}
		}
		out = append(out, sm)
	}
	return out
}

// Seed gives a server (and tool) the fleet's profile when it has none of
// its own yet: it starts learned, judged against what the fleet saw,
// instead of a blank window. It says whether it seeded.
func (s *Store) Seed(sm Summary) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pk := sm.Server + "\x00" + sm.Tool
	if _, ok := s.data.Baselines[pk]; ok {
		return false
	}
	s.data.Baselines[pk] = &Profile{Server: sm.Server, Name: "fleet:" + strings.Join(sm.Hosts, ","), Tool: sm.Tool,
		Events: sm.Events, Types: orEmpty(sm.Types), Paths: orEmpty(sm.Paths), Dests: orEmpty(sm.Dests), Exes: orEmpty(sm.Exes)}
	s.dirty = true
	return true
}

func orEmpty(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return maps.Clone(m)
}
