package fleet

import (
	"testing"
	"time"

	"github.com/nats-io/nkeys"
)

// A withdrawal holds back the reports made before it, not those made
// since (a replayed old withdrawal suppresses nothing new); a report or a
// withdrawal signed by a key not listed counts for nothing; an edited
// report does not verify.
func TestTrustedTimes(t *testing.T) {
	a, _ := nkeys.CreateServer()
	x, _ := nkeys.CreateServer()
	pa, _ := a.PublicKey()
	t0 := time.Now().UTC()
	rep := func(kp nkeys.KeyPair, host string, at time.Time) Report {
		r := Report{Host: host, Time: at}
		if err := sign(kp, Destination, "203.0.113.7:443", "r", "report", &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	wd := func(kp nkeys.KeyPair, at time.Time) *Report {
		r := Report{Host: "w", Time: at, Reason: "fp"}
		if err := sign(kp, Destination, "203.0.113.7:443", "r", "withdraw", &r); err != nil {
			t.Fatal(err)
		}
		return &r
	}
	trust := Trust{Keys: []string{pa}}
	in := &Indicator{Type: Destination, Value: "203.0.113.7:443", Rule: "r", Reports: []Report{rep(a, "a", t0)}}
	if ok, why := trust.Trusted(in); !ok {
		t.Fatalf("a listed key's report: %s", why)
	}
	in.Withdrawn = wd(x, t0.Add(time.Second)) // not listed
	if ok, _ := trust.Trusted(in); !ok {
		t.Fatal("an unlisted key withdrew it")
	}
	in.Withdrawn = wd(a, t0.Add(time.Second))
	if ok, _ := trust.Trusted(in); ok {
		t.Fatal("withdrawn, still in force")
	}
	in.Reports = append(in.Reports, rep(a, "a", t0.Add(2*time.Second)))
	if ok, why := trust.Trusted(in); !ok {
		t.Fatalf("a report after the withdrawal: %s", why)
	}
	in.Reports = []Report{rep(x, "x", t0.Add(3*time.Second))}
	if ok, _ := trust.Trusted(in); ok {
		t.Fatal("an unlisted key's report was taken")
	}
	r := rep(a, "a", t0.Add(4*time.Second))
	r.Host = "someone-else"
	in.Reports, in.Withdrawn = []Report{r}, nil
	if ok, _ := trust.Trusted(in); ok {
		t.Fatal("an edited report verified")
	}
}
