package decode

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// parseOneReference is parseOne as json.Unmarshal does it: the scanner
// must agree with it on every input.
func parseOneReference(b []byte) (Message, bool) {
	var r rawMessage
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &r) != nil || r.JSONRPC == "" {
		return Message{}, false
	}
	m := Message{Kind: "message", JSONRPC: r.JSONRPC, Method: r.Method, ID: r.ID, Params: r.Params, Result: r.Result, Error: r.Error}
	switch {
	case r.Method != "" && r.ID == nil:
		m.Type = "notification"
	case r.Method != "":
		m.Type = "request"
	case r.Error != nil:
		m.Type = "error"
	default:
		m.Type = "response"
	}
	if r.Method == "tools/call" && len(r.Params) > 0 {
		var p struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if json.Unmarshal(r.Params, &p) == nil {
			m.Tool, m.Arguments = p.Name, p.Arguments
		}
	}
	return m, true
}

var scanSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"a \"quoted\" \\ word"}}}`,
	`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
	`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	`{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"}]{["}]}}`,
	`{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no"}}`,
	` { "JSONRPC" : "2.0" , "Method" : "tools/call" , "ID" : 3 , "params" : { "NAME" : "x" , "arguments" : null } } `,
	`{"jsonrpc":"2.0","method":"a","method":"b","id":1}`,
	`{"\u006aSONrpc":"2.0","method":"caf\u00e9","id":1}`,
	`{"jsonrpc":2,"method":"x"}`,
	`{"jsonrpc":"2.0","method":["x"],"id":1}`,
	`{"jsonrpc":"2.0","method":"tools/call","id":1,"params":{"name":5}}`,
	`{"jsonrpc":"2.0","method":"tools/call","id":1,"params":[1,2]}`,
	`{"jsonrpc":"2.0","method":"tools/call","id":1,"params":"s"}`,
	"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\",\"id\":1}",
	`{"jsonrpc":"2.0","id":1,"result":{}} trailing`,
	`{"jsonrpc":null,"method":"x"}`,
	`{"a":{"b":[{"c":"\\\\"}]},"jsonrpc":"2.0","id":[],"result":true}`,
}

func checkScan(t *testing.T, in []byte) {
	want, ok := parseOneReference(bytes.TrimSpace(in))
	got, err := parseOne(bytes.TrimSpace(in))
	if (err == nil) != ok {
		t.Fatalf("%q: scanner error %v, json.Unmarshal ok %v", in, err, ok)
	}
	if ok && !reflect.DeepEqual(norm(got), norm(want)) {
		t.Fatalf("%q:\nscanner %+v\nwant    %+v", in, got, want)
	}
}

// norm makes empty and nil raw values alike for the comparison.
func norm(m Message) Message {
	for _, r := range []*json.RawMessage{&m.ID, &m.Params, &m.Result, &m.Error, &m.Arguments} {
		if len(*r) == 0 {
			*r = nil
		}
	}
	return m
}

func TestParseOneScanner(t *testing.T) {
	for _, s := range scanSeeds {
		checkScan(t, []byte(s))
	}
}

func FuzzParseOne(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkScan(t, in) })
}
