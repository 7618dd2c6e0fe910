package config

import (
	"fmt"
	"sort"
	"strings"
)

// Profile is what a profile name means, the same in every command.
type Profile struct {
	Name string
	// Response is the containment mode when `response` is not set.
	Response string
	// TightenAt: from an alert of this severity on, `sensor run`'s seccomp
	// supervisor refuses the server's execs (and, with TightenConnects,
	// its connects).
	TightenAt       string
	TightenConnects bool
	// Playbook is the graduated response by severity (an alert's rule may
	// ask for its own action instead).
	Playbook map[string][]string
}

// profiles are the three profiles.
var profiles = map[string]Profile{
	"baseline":   {Name: "baseline", Response: "monitor", TightenAt: "critical", Playbook: playbook(nil)},
	"enterprise": {Name: "enterprise", Response: "enforce", TightenAt: "high", Playbook: playbook(nil)},
	// strict also cuts a server off the network at a high alert
	"strict": {Name: "strict", Response: "enforce", TightenAt: "medium", TightenConnects: true,
		Playbook: playbook(map[string][]string{"high": {"capture-all", "pause-learning", "deny-egress"}})},
}

// playbook is the default graduated response, a SOC's: critical isolates
// and contains, high watches closer, medium slows down, low logs.
func playbook(over map[string][]string) map[string][]string {
	pb := map[string][]string{
		"critical": {"freeze", "deny-egress", "snapshot"},
		"high":     {"capture-all", "pause-learning"},
		"medium":   {"throttle"},
		"low":      {"log"},
	}
	for k, v := range over {
		pb[k] = v
	}
	return pb
}

// ProfileNames lists the profiles.
func ProfileNames() []string {
	out := make([]string, 0, len(profiles))
	for n := range profiles {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// LookupProfile returns a profile by name.
func LookupProfile(name string) (Profile, error) {
	p, ok := profiles[name]
	if !ok {
		return Profile{}, fmt.Errorf("%q is not a profile: use %s", name, strings.Join(ProfileNames(), ", "))
	}
	return p, nil
}

// Effective is the profile the configuration names, and the containment
// mode in force: `response` if set, else the profile's.
func (c *Config) Effective() (Profile, string) {
	p, err := LookupProfile(c.Profile)
	if err != nil {
		p = profiles["baseline"]
	}
	if c.Response != "" {
		return p, c.Response
	}
	return p, p.Response
}
