package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpsec/sensor/pkg/correlate"
)

// FalcoAlert is an alert in Falco's JSON output shape, which Falcosidekick
// accepts and fans out to everything it supports.
type FalcoAlert struct {
	Output       string         `json:"output"`
	Priority     string         `json:"priority"`
	Rule         string         `json:"rule"`
	Time         time.Time      `json:"time"`
	OutputFields map[string]any `json:"output_fields"`
	Hostname     string         `json:"hostname"`
	Tags         []string       `json:"tags"`
	Source       string         `json:"source"`
}

// falcoPriority maps our severities onto Falco's priorities.
var falcoPriority = map[string]string{"critical": "Critical", "high": "Error", "medium": "Warning", "low": "Notice"}

// ToFalco converts an alert.
func ToFalco(a *correlate.Alert, host string) FalcoAlert {
	f := FalcoAlert{
		Output:   a.Time.Format("15:04:05.000000000") + ": " + falcoPriority[a.Severity] + " " + a.Output,
		Priority: falcoPriority[a.Severity], Rule: a.Rule, Time: a.Time.UTC(), Hostname: host,
		Tags: append([]string{"mcp"}, a.Tags...), Source: "mcp-sensor",
		OutputFields: map[string]any{
			"proc.pid": a.PID, "proc.name": a.Comm, "mcp.server": a.Server, "evt.time": a.Time.UnixNano(),
		},
	}
	if a.Call != nil {
		f.OutputFields["mcp.session"] = a.Call.Session
		f.OutputFields["mcp.call.id"] = string(a.Call.ID)
		f.OutputFields["mcp.tool"] = a.Call.Tool
	}
	if len(a.Effects) > 0 {
		e := a.Effects[0]
		f.OutputFields["evt.type"] = e.Type
		if e.Path != "" {
			f.OutputFields["fd.name"] = e.Path
		}
		if e.Addr != "" {
			f.OutputFields["fd.sip.name"] = e.Addr
		}
		if len(e.Argv) > 0 {
			f.OutputFields["proc.cmdline"] = e.Argv
		}
	}
	if a.Response != nil {
		f.OutputFields["mcp.response"] = a.Response.Done
	}
	return f
}

// FalcoStats counts what the Falco output did.
type FalcoStats struct {
	Sent    uint64 `json:"sent"`
	Failed  uint64 `json:"failed"`  // posts that failed after retries
	Dropped uint64 `json:"dropped"` // alerts dropped because the queue was full
}

// Falco posts alerts to an HTTP endpoint in Falco's shape, from a bounded
// queue: a slow endpoint never stalls the sensor, and what it loses is
// counted.
type Falco struct {
	url                   string
	host                  string
	client                *http.Client
	q                     chan any
	wg                    sync.WaitGroup
	sent, failed, dropped atomic.Uint64
	once                  sync.Once
}

// NewFalco starts the output.
func NewFalco(url string) *Falco {
	host, _ := os.Hostname()
	f := &Falco{url: url, host: host, client: &http.Client{Timeout: 5 * time.Second}, q: make(chan any, 1024)}
	f.wg.Add(1)
	go f.run()
	return f
}

// Publish queues an alert.
func (f *Falco) Publish(a *correlate.Alert) { f.Post(ToFalco(a, f.host)) }

// Post queues any JSON body (the OCSF output posts its findings).
func (f *Falco) Post(v any) {
	select {
	case f.q <- v:
	default:
		f.dropped.Add(1)
	}
}

func (f *Falco) run() {
	defer f.wg.Done()
	for fa := range f.q {
		body, _ := json.Marshal(fa)
		var err error
		for attempt := 0; attempt < 3; attempt++ {
			if err = f.post(body); err == nil {
				break
			}
			time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
		}
		if err != nil {
			f.failed.Add(1)
		} else {
			f.sent.Add(1)
		}
	}
}

func (f *Falco) post(body []byte) error {
	req, err := http.NewRequestWithContext(context.Background(), "POST", f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", f.url, resp.Status)
	}
	return nil
}

// Stats returns the counters.
func (f *Falco) Stats() FalcoStats {
	return FalcoStats{Sent: f.sent.Load(), Failed: f.failed.Load(), Dropped: f.dropped.Load()}
}

// Close sends what is queued and stops.
func (f *Falco) Close() {
	f.once.Do(func() {
		close(f.q)
		f.wg.Wait()
	})
}
