package sink

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

// ocsfSchema is the pinned OCSF schema (testdata/ocsf, upstream commit
// a5cfc68e), resolved the way the OCSF server resolves it: a class or an
// object is its "extends" chain merged, attributes from "$include"d files
// (profiles and includes) added, each attribute's type, array-ness and
// enum from the dictionary unless the class or object refines them.
type ocsfSchema struct {
	dict    map[string]map[string]any
	types   map[string]string // derived type -> its base (email_t -> string_t)
	objects map[string]map[string]attr
	objCons map[string]map[string][]string
}

type attr struct {
	typ       string
	array     bool
	required  bool
	profile   string // the profile it comes from ("" for the class's own)
	enum      map[string]bool
	sibling   string
	reqByProf bool
}

func loadOCSF(t *testing.T) *ocsfSchema {
	t.Helper()
	root := filepath.Join("testdata", "ocsf")
	var d struct {
		Attributes map[string]map[string]any `json:"attributes"`
		Types      struct {
			Attributes map[string]map[string]any `json:"attributes"`
		} `json:"types"`
	}
	readJSON(t, filepath.Join(root, "dictionary.json"), &d)
	s := &ocsfSchema{dict: d.Attributes, types: map[string]string{}, objects: map[string]map[string]attr{}, objCons: map[string]map[string][]string{}}
	for name, ty := range d.Types.Attributes {
		if base, _ := ty["type"].(string); base != "" {
			s.types[name] = base
		} else {
			s.types[name] = name
		}
	}
	files, _ := filepath.Glob(filepath.Join(root, "objects", "*.json"))
	raw := map[string]map[string]any{}
	for _, f := range files {
		var o map[string]any
		readJSON(t, f, &o)
		raw[o["name"].(string)] = o
	}
	var resolve func(name string) (map[string]attr, map[string][]string)
	resolve = func(name string) (map[string]attr, map[string][]string) {
		if a, ok := s.objects[name]; ok {
			return a, s.objCons[name]
		}
		o := raw[name]
		if o == nil {
			t.Fatalf("no OCSF object %q", name)
		}
		out, cons := map[string]attr{}, map[string][]string{}
		if parent, _ := o["extends"].(string); parent != "" && parent != name {
			pa, pc := resolve(parent)
			for k, v := range pa {
				out[k] = v
			}
			for k, v := range pc {
				cons[k] = v
			}
		}
		s.merge(t, root, out, o, "")
		for k, v := range constraints(o) {
			cons[k] = v
		}
		s.objects[name], s.objCons[name] = out, cons
		return out, cons
	}
	for name := range raw {
		resolve(name)
	}
	return s
}

func constraints(o map[string]any) map[string][]string {
	out := map[string][]string{}
	c, _ := o["constraints"].(map[string]any)
	for k, v := range c {
		for _, x := range v.([]any) {
			out[k] = append(out[k], x.(string))
		}
	}
	return out
}

// merge adds a definition's attributes (and its includes') to out.
func (s *ocsfSchema) merge(t *testing.T, root string, out map[string]attr, def map[string]any, profile string) {
	attrs, _ := def["attributes"].(map[string]any)
	if inc, ok := attrs["$include"].([]any); ok {
		for _, f := range inc {
			var d map[string]any
			readJSON(t, filepath.Join(root, f.(string)), &d)
			p := ""
			if d["meta"] == "profile" {
				p, _ = d["name"].(string)
			}
			s.merge(t, root, out, d, p)
		}
	}
	for name, v := range attrs {
		if name == "$include" {
			continue
		}
		local, _ := v.(map[string]any)
		a, seen := out[name]
		if !seen {
			dd := s.dict[name]
			if dd == nil {
				t.Fatalf("attribute %q is not in the dictionary", name)
			}
			a.typ, _ = dd["type"].(string)
			a.array, _ = dd["is_array"].(bool)
			a.enum = enumOf(dd)
			a.sibling, _ = dd["sibling"].(string)
			a.profile = profile
		}
		if ty, ok := local["type"].(string); ok {
			a.typ = ty
		}
		if e := enumOf(local); e != nil {
			a.enum = e
		}
		if r, ok := local["requirement"].(string); ok {
			a.required = r == "required"
			a.reqByProf = profile != ""
		}
		out[name] = a
	}
}

func enumOf(m map[string]any) map[string]bool {
	e, ok := m["enum"].(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]bool{}
	for k := range e {
		out[k] = true
	}
	return out
}

// class resolves an event class from its file and its extends chain.
func (s *ocsfSchema) class(t *testing.T, rel string) (map[string]attr, map[string][]string) {
	root := filepath.Join("testdata", "ocsf")
	var def map[string]any
	readJSON(t, filepath.Join(root, rel), &def)
	out, cons := map[string]attr{}, map[string][]string{}
	if parent, _ := def["extends"].(string); parent != "" {
		pf := map[string]string{"base_event": "events/base_event.json", "finding": "events/findings/finding.json"}[parent]
		if pf == "" {
			t.Fatalf("unknown parent %s", parent)
		}
		pa, pc := s.class(t, pf)
		for k, v := range pa {
			out[k] = v
		}
		for k, v := range pc {
			cons[k] = v
		}
	}
	s.merge(t, root, out, def, "")
	for k, v := range constraints(def) {
		cons[k] = v
	}
	return out, cons
}

// validate checks v against attributes: every required one present
// (a profile's only when the event applies it), nothing unknown, types,
// arrays, enums and constraints; problems are paths.
func (s *ocsfSchema) validate(path string, v map[string]any, attrs map[string]attr, cons map[string][]string, profiles []string) []string {
	var bad []string
	for name, a := range attrs {
		if a.required && (!a.reqByProf || slices.Contains(profiles, a.profile)) && v[name] == nil {
			bad = append(bad, fmt.Sprintf("%s.%s: required", path, name))
		}
	}
	if g := cons["at_least_one"]; len(g) > 0 && !slices.ContainsFunc(g, func(n string) bool { return v[n] != nil }) {
		bad = append(bad, fmt.Sprintf("%s: at least one of %v", path, g))
	}
	if g := cons["just_one"]; len(g) > 0 {
		n := 0
		for _, k := range g {
			if v[k] != nil {
				n++
			}
		}
		if n != 1 {
			bad = append(bad, fmt.Sprintf("%s: just one of %v", path, g))
		}
	}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range keys {
		a, ok := attrs[name]
		p := path + "." + name
		if !ok {
			bad = append(bad, p+": not an attribute here")
			continue
		}
		if a.profile != "" && !slices.Contains(profiles, a.profile) {
			bad = append(bad, fmt.Sprintf("%s: of the %s profile, not in metadata.profiles", p, a.profile))
		}
		vals := []any{v[name]}
		if a.array {
			arr, ok := v[name].([]any)
			if !ok {
				bad = append(bad, p+": want an array")
				continue
			}
			vals = arr
		}
		for _, x := range vals {
			bad = append(bad, s.value(p, x, a, profiles)...)
		}
	}
	return bad
}

func (s *ocsfSchema) value(p string, x any, a attr, profiles []string) []string {
	if obj, ok := s.objects[a.typ]; ok {
		m, ok := x.(map[string]any)
		if !ok {
			return []string{p + ": want an object " + a.typ}
		}
		if a.typ == "object" {
			return nil // free-form (unmapped)
		}
		return s.validate(p, m, obj, s.objCons[a.typ], profiles)
	}
	base := s.types[a.typ]
	switch base {
	case "string_t":
		if _, ok := x.(string); !ok {
			return []string{p + ": want a string"}
		}
	case "integer_t", "long_t":
		f, ok := x.(float64)
		if !ok || f != math.Trunc(f) {
			return []string{p + ": want an integer"}
		}
		if a.enum != nil && !derived[p[strings.LastIndex(p, ".")+1:]] && !a.enum[fmt.Sprint(int64(f))] {
			return []string{fmt.Sprintf("%s: %v is not in its enum", p, f)}
		}
	case "boolean_t":
		if _, ok := x.(bool); !ok {
			return []string{p + ": want a boolean"}
		}
	case "float_t":
		if _, ok := x.(float64); !ok {
			return []string{p + ": want a number"}
		}
	case "json_t":
	default:
		return []string{fmt.Sprintf("%s: unknown type %q", p, a.typ)}
	}
	return nil
}

// derived are the ids the OCSF server computes per class (their enums in
// the dictionary are placeholders): checked against the class's files.
var derived = map[string]bool{"class_uid": true, "category_uid": true, "type_uid": true}

// classIDs reads the class's uid and its category's from the schema.
func classIDs(t *testing.T) (category, class int) {
	var def struct {
		UID      int    `json:"uid"`
		Category string `json:"category"`
	}
	readJSON(t, filepath.Join("testdata", "ocsf", "events", "findings", "detection_finding.json"), &def)
	if def.Category == "" { // inherited from the finding class
		var parent struct {
			Category string `json:"category"`
		}
		readJSON(t, filepath.Join("testdata", "ocsf", "events", "findings", "finding.json"), &parent)
		def.Category = parent.Category
	}
	var cats struct {
		Attributes map[string]struct {
			UID int `json:"uid"`
		} `json:"attributes"`
	}
	readJSON(t, filepath.Join("testdata", "ocsf", "categories.json"), &cats)
	category = cats.Attributes[def.Category].UID
	return category, category*1000 + def.UID
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// Alerts as OCSF Detection Findings validate against the pinned schema,
// with the audit record's hash chain in record_integrity's attestation;
// a finding missing a required attribute, with an unknown one or a value
// outside its enum does not.
func TestOCSFValidates(t *testing.T) {
	s := loadOCSF(t)
	attrs, cons := s.class(t, "events/findings/detection_finding.json")
	dir := t.TempDir()
	l, err := audit.Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	a := &correlate.Alert{Kind: "alert", ID: "8000000000000001", Time: time.Now(), Proc: decode.Proc{PID: 1, TID: 1, Server: "1-2"},
		ServerName: "@acme/notes@1.0.0", Rule: "credential_read_then_egress", Severity: "critical", Tags: []string{"T1041", "T1552.001"},
		Output: "x", Why: "y", Source: "rules/exfiltration.yaml:25",
		Effects:  []*decode.Effect{{Kind: "effect", Type: "connect", Addr: "127.0.0.1:9"}},
		Response: &correlate.Response{Mode: "enforce", Actions: []string{"freeze"}, Done: []string{"freeze"}, FrozenAt: time.Now()}}
	_, _ = l.Append("config", map[string]any{})
	rec, err := l.Append("alert", a)
	if err != nil {
		t.Fatal(err)
	}
	check := func(ev map[string]any) []string {
		b, _ := json.Marshal(ev)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		var profiles []string
		if meta, ok := m["metadata"].(map[string]any); ok {
			for _, p := range meta["profiles"].([]any) {
				profiles = append(profiles, p.(string))
			}
		}
		bad := s.validate("finding", m, attrs, cons, profiles)
		cat, cls := classIDs(t)
		act, _ := m["activity_id"].(float64)
		if m["category_uid"] != float64(cat) || m["class_uid"] != float64(cls) || m["type_uid"] != float64(cls*100)+act {
			bad = append(bad, fmt.Sprintf("finding: category_uid %v class_uid %v type_uid %v, want %d, %d, %d", m["category_uid"], m["class_uid"], m["type_uid"], cat, cls, cls*100+int(act)))
		}
		return bad
	}
	o := OCSFOptions{Host: "host1", Version: "test", Chain: "host1:/var/lib/mcp-sensor/audit"}
	ev := ToOCSF(a, rec, o)
	if bad := check(ev); len(bad) > 0 {
		t.Fatalf("a finding does not validate:\n%s", strings.Join(bad, "\n"))
	}
	att := ev["attestation_list"].([]any)[0].(map[string]any)
	if att["fingerprint"].(map[string]any)["value"] != rec.Hash || att["prev_event"].(map[string]any)["fingerprint"].(map[string]any)["value"] != rec.Prev {
		t.Fatalf("the attestation does not carry the record's chain: %v", att)
	}
	// an alert of the baseline, monitor only, outside the trail
	b := *a
	b.Source, b.Response, b.Severity, b.Tags = "baseline", nil, "low", nil
	if bad := check(ToOCSF(&b, nil, o)); len(bad) > 0 {
		t.Fatalf("a baseline finding does not validate:\n%s", strings.Join(bad, "\n"))
	}
	// and the validator can fail
	for name, mutate := range map[string]func(map[string]any){
		"no class_uid":     func(m map[string]any) { delete(m, "class_uid") },
		"unknown field":    func(m map[string]any) { m["verdict"] = "bad" },
		"severity 7":       func(m map[string]any) { m["severity_id"] = 7 },
		"no finding uid":   func(m map[string]any) { delete(m["finding_info"].(map[string]any), "uid") },
		"profile unlisted": func(m map[string]any) { m["metadata"].(map[string]any)["profiles"] = []string{"host"} },
	} {
		ev := ToOCSF(a, rec, o)
		mutate(ev)
		if bad := check(ev); len(bad) == 0 {
			t.Errorf("%s: validated", name)
		}
	}
}
