package jsonscan

import (
	"encoding/json"
	"reflect"
	"testing"
)

var seeds = []string{
	`{"message":"hello","n":1,"f":-1.5e3,"ok":true,"none":null,"list":[1,"two",[3],{}],"o":{"k":"v"}}`,
	`{"a":"caf\u00e9","b":"tab\there","c":"\"q\""}`,
	"{\"bad\":\"\xff\"}",
	`{"dup":1,"dup":2}`,
	`[]`, `{}`, `"s"`, `0`, `-0`, `1e400`, `01`, `1.`, `-`, `tru`, `nul`, ` {"a" : [ 1 , 2 ] } `,
	`{"a":1,}`, `[1,]`, `{"a" 1}`, `{"a":1} x`, `[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
	"\"ctl\x01\"", `{"k\n":1}`, `1.5E+2`, `-12.25e-1`, `null`, ` null `,
}

func checkValue(t *testing.T, in []byte) {
	var want any
	werr := json.Unmarshal(in, &want)
	got, ok := Value(in)
	if ok != (werr == nil) {
		t.Fatalf("%q: Value ok %v, json.Unmarshal error %v", in, ok, werr)
	}
	if ok && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: Value %#v, json.Unmarshal %#v", in, got, want)
	}
}

// Value gives what json.Unmarshal into an any gives, on every input.
func TestValue(t *testing.T) {
	for _, s := range seeds {
		checkValue(t, []byte(s))
	}
}

func FuzzValue(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkValue(t, in) })
}

// Fields, on a valid object, sees each key and value json.Unmarshal into a
// map of raw values sees (the last of a repeated key winning).
func checkFields(t *testing.T, in []byte) {
	if !json.Valid(in) {
		return
	}
	var want map[string]json.RawMessage
	werr := json.Unmarshal(in, &want)
	got := map[string]json.RawMessage{}
	isObj := Fields(in, func(k, v []byte) {
		var key string
		if json.Unmarshal(k, &key) != nil {
			t.Fatalf("%q: key %q is not a string", in, k)
		}
		got[key] = v
	})
	// json.Unmarshal accepts null into a map (leaving it nil); Fields sees
	// only objects.
	if isObj != (werr == nil && want != nil) {
		t.Fatalf("%q: Fields object %v, json.Unmarshal error %v", in, isObj, werr)
	}
	if !isObj {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%q: Fields %v, json.Unmarshal %v", in, got, want)
	}
	for k, v := range want {
		if string(got[k]) != string(v) {
			t.Fatalf("%q: %q is %q, json.Unmarshal %q", in, k, got[k], v)
		}
	}
}

func TestFields(t *testing.T) {
	for _, s := range seeds {
		checkFields(t, []byte(s))
	}
}

func FuzzFields(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkFields(t, in) })
}

func BenchmarkValue(b *testing.B) {
	in := []byte(`{"message":"` + string(make([]byte, 0)) + `mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm","path":"/tmp/x","n":3,"flags":["-a","-b"]}`)
	b.Run("jsonscan", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			Value(in)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var v any
			_ = json.Unmarshal(in, &v)
		}
	})
}
