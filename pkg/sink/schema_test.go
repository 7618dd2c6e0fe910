package sink

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

// Alerts as the sensor marshals them match the published schema; an alert
// missing a required field or with an unknown severity does not.
func TestAlertSchema(t *testing.T) {
	var sch jsonschema.Schema
	if err := json.Unmarshal(AlertSchema, &sch); err != nil {
		t.Fatal(err)
	}
	res, err := sch.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &correlate.Alert{Kind: "alert", Time: time.Now(), Proc: decode.Proc{PID: 1, TID: 1, Server: "1-2"},
		Rule: "credential_read_unnamed", Severity: "high", Output: "x", Why: "y", Source: "rules/exfiltration.yaml:4",
		Call:     &decode.CallRef{Session: "stdio:1", ID: json.RawMessage("7"), Tool: "read_notes"},
		Effects:  []*decode.Effect{{Kind: "effect", Type: "open", Path: "/root/.ssh/id_rsa"}},
		Response: &correlate.Response{Mode: "enforce", Actions: []string{"freeze"}, Done: []string{"freeze"}, FrozenAt: time.Now()}}
	validate := func(v any) error {
		b, _ := json.Marshal(v)
		var inst any
		_ = json.Unmarshal(b, &inst)
		return res.Validate(inst)
	}
	if err := validate(a); err != nil {
		t.Fatalf("a real alert does not match the schema: %v", err)
	}
	bad := *a
	bad.Severity = "urgent"
	if validate(&bad) == nil {
		t.Error("an unknown severity passed")
	}
	var m map[string]any
	b, _ := json.Marshal(a)
	_ = json.Unmarshal(b, &m)
	delete(m, "rule")
	if res.Validate(m) == nil {
		t.Error("an alert without its rule passed")
	}
}
