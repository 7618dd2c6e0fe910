package pipeline

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"cel.dev/cel-go/cel"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/decode"
)

// Output is one place the pipeline prints to: the trace, the daemon's
// stdout, its alerts file.
type Output struct {
	Name   string
	W      io.Writer
	Format string // text or json
	Color  bool
	// Only names the kinds printed: messages, effects, alerts, servers
	// (text only), stats; nil: messages, effects, alerts and stats.
	Only []string
	// HideRuntime folds the opens of libraries, interpreters and modules
	// (the rules' runtime_paths) made outside any call into one line.
	HideRuntime bool
	// Filter is a CEL expression over each event as its JSON object (`ev`,
	// e.g. ev.kind == "effect" && ev.type == "connect"); stats always pass.
	Filter string
}

// OutputKinds are the kinds an output can print.
var OutputKinds = []string{"messages", "effects", "alerts", "servers", "stats"}

// outputSub prints to one output. After a write error it prints nothing
// more: a launched command keeps running (it is someone's MCP server),
// other modes stop.
type outputSub struct {
	o       Output
	w       Writer
	sink    *Sink
	kinds   map[string]bool
	filter  cel.Program
	runtime *correlate.RuleSet // for runtime_paths
	folded  int
	failed  atomic.Bool
	mu      sync.Mutex
	err     error
	onFail  func(error)
}

func newOutputSub(o Output, rules *correlate.RuleSet) (*outputSub, error) {
	sink := NewSink(o.W)
	w, err := NewWriter(o.Format, sink, o.Color)
	if err != nil {
		return nil, err
	}
	s := &outputSub{o: o, w: w, sink: sink, kinds: map[string]bool{}, runtime: rules}
	only := o.Only
	if len(only) == 0 {
		only = []string{"messages", "effects", "alerts", "stats"}
	}
	for _, k := range only {
		ok := false
		for _, x := range OutputKinds {
			ok = ok || x == k
		}
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a kind: use %s", o.Name, k, strings.Join(OutputKinds, ", "))
		}
		s.kinds[k] = true
	}
	if o.Filter != "" {
		env, err := cel.NewEnv(cel.Variable("ev", cel.MapType(cel.StringType, cel.DynType)))
		if err != nil {
			return nil, err
		}
		ast, iss := env.Compile(o.Filter)
		if iss != nil && iss.Err() != nil {
			return nil, fmt.Errorf("filter %q: %v (events are ev: ev.kind, ev.type, ev.path, ev.method, ev.rule, ...)", o.Filter,
				strings.SplitN(iss.Err().Error(), "\n", 2)[0])
		}
		if ast.OutputType() != cel.BoolType {
			return nil, fmt.Errorf("filter %q: is a %v, not a bool", o.Filter, ast.OutputType())
		}
		if s.filter, err = env.Program(ast, cel.CostLimit(100_000)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// want says whether the output takes an item at all (its subscriber's
// filter: what it does not want never reaches its queue).
func (s *outputSub) want(it Item) bool {
	switch {
	case it.Stats != nil:
		return s.kinds["stats"]
	case it.Server != nil:
		return s.kinds["servers"] && s.o.Format == "text"
	case it.alert() != nil:
		return s.kinds["alerts"]
	}
	switch it.Event.(type) {
	case *decode.Message:
		return s.kinds["messages"]
	case *decode.Effect:
		return s.kinds["effects"]
	}
	return false
}

func (s *outputSub) handle(items []Item) error {
	if s.failed.Load() {
		return nil
	}
	for _, it := range items {
		if err := s.print(it); err != nil {
			s.fail(err)
			return err
		}
	}
	if err := s.w.Flush(); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

func (s *outputSub) print(it Item) error {
	switch {
	case it.Stats != nil:
		if err := s.unfold(); err != nil {
			return err
		}
		return s.w.Stats(it.Stats)
	case it.Server != nil:
		if err := s.unfold(); err != nil {
			return err
		}
		return s.w.Server(it.Server)
	}
	if s.hidden(it.Event) {
		s.folded++
		return nil
	}
	if s.filter != nil && !s.passes(it.Event) {
		return nil
	}
	if err := s.unfold(); err != nil {
		return err
	}
	return s.w.Event(it.Event)
}

// hidden: a runtime open outside any call, folded with --hide-runtime.
func (s *outputSub) hidden(e decode.Event) bool {
	if !s.o.HideRuntime {
		return false
	}
	ef, ok := e.(*decode.Effect)
	if !ok || ef.Call != nil || (ef.Type != "open" && ef.Type != "mmap_exec") {
		return false
	}
	return s.runtime.Match(ef.Path, "runtime_paths", nil)
}

// unfold prints the line that stands for the folded opens, if any.
func (s *outputSub) unfold() error {
	if s.folded == 0 {
		return nil
	}
	n := s.folded
	s.folded = 0
	return s.w.Folded(n)
}

// passes evaluates the filter on the event's JSON object.
func (s *outputSub) passes(e decode.Event) bool {
	b, err := json.Marshal(e)
	if err != nil {
		return false
	}
	var ev map[string]any
	if json.Unmarshal(b, &ev) != nil {
		return false
	}
	v, _, err := s.filter.Eval(map[string]any{"ev": ev})
	return err == nil && v.Value() == true
}

func (s *outputSub) flush() error {
	if s.failed.Load() {
		return nil
	}
	err := s.unfold()
	if err == nil {
		err = s.w.Flush()
	}
	if err != nil {
		s.fail(err)
	}
	return err
}

func (s *outputSub) fail(err error) {
	if !s.failed.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	s.err = fmt.Errorf("writing %s: %w", s.o.Name, err)
	s.mu.Unlock()
	if s.onFail != nil {
		s.onFail(err)
	}
}

func (s *outputSub) error() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
