package respond

import (
	"net/netip"
	"testing"

	"github.com/mcpsec/sensor/pkg/correlate"
)

func TestParseAllow(t *testing.T) {
	got, skipped := ParseAllow([]string{"10.0.0.0/8", "10.1.2.3:443", "10.1.2.3:80", "192.0.2.1:53", "192.0.2.1", "api.example.com", "::1"})
	want := map[netip.Prefix][]uint16{
		netip.MustParsePrefix("10.0.0.0/8"):   nil,
		netip.MustParsePrefix("10.1.2.3/32"):  {443, 80},
		netip.MustParsePrefix("192.0.2.1/32"): nil, // any port wins
		netip.MustParsePrefix("::1/128"):      nil,
	}
	if len(got) != len(want) || len(skipped) != 1 || skipped[0] != "api.example.com" {
		t.Fatalf("%+v %v", got, skipped)
	}
	for _, a := range got {
		w, ok := want[a.Prefix]
		if !ok || len(w) != len(a.Ports) {
			t.Errorf("%v: ports %v, want %v", a.Prefix, a.Ports, w)
		}
	}
}

func TestActions(t *testing.T) {
	r := &Responder{}
	for _, tc := range []struct {
		sev, action string
		want        string
	}{
		{"critical", "", "freeze"},
		{"high", "", "capture-all"},
		{"medium", "", "throttle"},
		{"low", "", "log"},
		{"low", "kill", "deny-egress"},
		{"high", "deny-exec", "kill-on-exec"},
	} {
		got := r.Actions(&correlate.Alert{Severity: tc.sev, Action: tc.action})
		if len(got) == 0 || got[0] != tc.want {
			t.Errorf("%s/%s: %v", tc.sev, tc.action, got)
		}
	}
	// monitor mode says what it would do, and does nothing
	a := &correlate.Alert{Severity: "critical"}
	(&Responder{Mode: Monitor}).Respond(a)
	if a.Response == nil || a.Response.Mode != Monitor || len(a.Response.Done) != 0 || len(a.Response.Actions) != 3 {
		t.Fatalf("%+v", a.Response)
	}
}
