// Package fleet is what the sensors of many hosts share on a NATS
// JetStream cluster: indicators (destinations, tool-definition hashes,
// packages, executables) derived from high and critical alerts, each
// report signed with its host's nkey, in a key-value bucket every host
// watches; and each host's inventory, with heartbeats. No payload, path or
// argument leaves a host.
package fleet

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nkeys"
)

// Indicator types.
const (
	Destination = "destination" // ip:port a server sent (or tried to send) data to
	ToolHash    = "tool_hash"   // a tool definition's SHA-256
	Package     = "package"     // npm:@scope/name@1.2.3, pypi:name@1.0
	ExeHash     = "exe_hash"    // a server's executable or script, SHA-256
)

// Indicator is what one or more hosts reported, with who reported it.
type Indicator struct {
	Type      string    `json:"type"`
	Value     string    `json:"value"`
	Rule      string    `json:"rule"`
	Severity  string    `json:"severity"`
	FirstHost string    `json:"first_host"`
	FirstSeen time.Time `json:"first_seen"`
	Reports   []Report  `json:"reports"`
	// Withdrawn: an analyst's false-positive verdict took it back for the
	// whole fleet.
	Withdrawn *Report `json:"withdrawn,omitempty"`
}

// Report is one host's signed word for an indicator.
type Report struct {
	Host    string    `json:"host"`
	Key     string    `json:"key"` // the host's nkey (public)
	Time    time.Time `json:"time"`
	AlertID string    `json:"alert_id,omitempty"`
	Reason  string    `json:"reason,omitempty"` // a withdrawal's
	Sig     string    `json:"sig"`
}

// KeyOf is an indicator's key in the bucket: its type and a hash of its
// value (values hold characters keys may not).
func KeyOf(typ, value string) string {
	sum := sha256.Sum256([]byte(typ + "\x00" + value))
	return typ + "." + hex.EncodeToString(sum[:16])
}

// signed is what a report's signature covers.
func signed(typ, value, rule, verb string, r Report) []byte {
	return []byte(strings.Join([]string{verb, typ, value, rule, r.Host, r.Key, r.Time.UTC().Format(time.RFC3339Nano), r.AlertID, r.Reason}, "\x00"))
}

// sign fills a report's key and signature.
func sign(kp nkeys.KeyPair, typ, value, rule, verb string, r *Report) error {
	pub, err := kp.PublicKey()
	if err != nil {
		return err
	}
	r.Key = pub
	sig, err := kp.Sign(signed(typ, value, rule, verb, *r))
	if err != nil {
		return err
	}
	r.Sig = base64.RawStdEncoding.EncodeToString(sig)
	return nil
}

// verify checks a report's signature against the key it names.
func verify(typ, value, rule, verb string, r Report) error {
	kp, err := nkeys.FromPublicKey(r.Key)
	if err != nil {
		return fmt.Errorf("report of %s: key: %w", r.Host, err)
	}
	sig, err := base64.RawStdEncoding.DecodeString(r.Sig)
	if err != nil {
		return fmt.Errorf("report of %s: signature: %w", r.Host, err)
	}
	if err := kp.Verify(signed(typ, value, rule, verb, r), sig); err != nil {
		return fmt.Errorf("report of %s: the signature does not match", r.Host)
	}
	return nil
}

// Trust says whose indicators a host takes.
type Trust struct {
	// Quorum is how many distinct trusted hosts must report an indicator
	// (default 1).
	Quorum int
	// Keys, if set, are the only public nkeys whose reports count.
	Keys []string
}

// Trusted says whether an indicator is taken under the trust setting: at
// least Quorum validly signed reports by distinct keys (of the listed
// ones) made after the last trusted withdrawal, if any. A withdrawal
// replayed from before holds nothing back that was reported since.
func (t Trust) Trusted(in *Indicator) (bool, string) {
	ok := func(r Report, verb string) bool {
		if len(t.Keys) > 0 && !contains(t.Keys, r.Key) {
			return false
		}
		return verify(in.Type, in.Value, in.Rule, verb, r) == nil
	}
	var since time.Time
	withdrawn := ""
	if w := in.Withdrawn; w != nil && ok(*w, "withdraw") {
		since, withdrawn = w.Time, "withdrawn by "+w.Host+": "+w.Reason
	}
	keys := map[string]bool{}
	for _, r := range in.Reports {
		if r.Time.After(since) && ok(r, "report") {
			keys[r.Key] = true
		}
	}
	need := max(1, t.Quorum)
	if len(keys) < need {
		if withdrawn != "" {
			return false, withdrawn
		}
		return false, fmt.Sprintf("%d trusted report(s), %d needed", len(keys), need)
	}
	return true, ""
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// Origin names where an indicator came from, for an alert.
func (in *Indicator) Origin() string {
	return fmt.Sprintf("%s %s, reported by %s (%s, %s), %d host(s)", in.Type, in.Value, in.FirstHost, in.Rule,
		in.FirstSeen.UTC().Format(time.RFC3339), len(in.Reports))
}

// Prefix is a destination indicator as an address prefix and port (0: any).
func (in *Indicator) Prefix() (netip.Prefix, uint16, error) {
	if in.Type != Destination {
		return netip.Prefix{}, 0, errors.New("not a destination")
	}
	if ap, err := netip.ParseAddrPort(in.Value); err == nil {
		return netip.PrefixFrom(ap.Addr().Unmap(), ap.Addr().Unmap().BitLen()), ap.Port(), nil
	}
	a, err := netip.ParseAddr(in.Value)
	if err != nil {
		return netip.Prefix{}, 0, fmt.Errorf("destination %q: %w", in.Value, err)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), 0, nil
}
