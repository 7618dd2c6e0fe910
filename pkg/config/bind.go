package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// EnvPrefix starts every environment variable of a key.
const EnvPrefix = "MCPSEC_"

// Key is one configuration key, as the YAML file, a flag and the
// environment name it.
type Key struct {
	Path  string // YAML: nats.url
	Flag  string // nats-url
	Env   string // MCPSEC_NATS_URL
	Short string
	Help  string
	cmds  []string
	index []int
	typ   reflect.Type
}

// ForCommand says whether the key has a flag in command cmd.
func (k Key) ForCommand(cmd string) bool {
	if k.Flag == "" {
		return false
	}
	if len(k.cmds) == 0 {
		// the gateway loads no eBPF: of the common keys it has these
		return cmd != Gateway || k.Path == "state_dir" || k.Path == "log_level" || k.Path == "max_message"
	}
	for _, c := range k.cmds {
		if c == cmd {
			return true
		}
	}
	return false
}

// Keys lists every key of Config, in declaration order.
func Keys() []Key {
	var out []Key
	walkKeys(reflect.TypeOf(Config{}), nil, nil, &out)
	return out
}

func walkKeys(t reflect.Type, prefix []string, index []int, out *[]Key) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := append(append([]string(nil), prefix...), name)
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
			walkKeys(f.Type, path, idx, out)
			continue
		}
		k := Key{Path: strings.Join(path, "."), Help: f.Tag.Get("help"), Short: f.Tag.Get("short"), index: idx, typ: f.Type}
		k.Env = EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
		if f.Tag.Get("noflag") == "" {
			k.Flag = strings.ReplaceAll(strings.Join(path, "-"), "_", "-")
			if fl := f.Tag.Get("flag"); fl != "" {
				k.Flag = fl
			}
		}
		if c := f.Tag.Get("cmds"); c != "" {
			k.cmds = strings.Split(c, ",")
		}
		*out = append(*out, k)
	}
}

// field is the key's value in c.
func (k Key) field(c *Config) reflect.Value {
	return reflect.ValueOf(c).Elem().FieldByIndex(k.index)
}

// set parses s into the key's field of c.
func (k Key) set(c *Config, s string) error {
	v := k.field(c)
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean: use true or false", s)
		}
		v.SetBool(b)
	case time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration: write it like 500ms, 10m or 1h30m", s)
		}
		v.SetInt(int64(d))
	case Size:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.SetUint(uint64(n))
	case int:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		v.SetInt(int64(n))
	case uint32:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a whole number (0 to 4294967295)", s)
		}
		v.SetUint(n)
	case []string:
		var l []string
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				l = append(l, x)
			}
		}
		v.Set(reflect.ValueOf(l))
	default:
		return fmt.Errorf("cannot be set from text")
	}
	return nil
}

// text is the key's value in c as text.
func (k Key) text(c *Config) string {
	switch x := k.field(c).Interface().(type) {
	case []string:
		return strings.Join(x, ",")
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

// flagValue is a flag writing into a scratch Config; only flags that were
// given are copied onto the layered configuration.
type flagValue struct {
	k   Key
	c   *Config
	set bool
}

func (f *flagValue) String() string { return f.k.text(f.c) }
func (f *flagValue) Set(s string) error {
	if _, ok := f.k.field(f.c).Interface().([]string); ok && f.set {
		// a repeated list flag adds to what it had
		prev := f.k.field(f.c).Interface().([]string)
		if err := f.k.set(f.c, s); err != nil {
			return err
		}
		f.k.field(f.c).Set(reflect.ValueOf(append(prev, f.k.field(f.c).Interface().([]string)...)))
		return nil
	}
	f.set = true
	return f.k.set(f.c, s)
}
func (f *flagValue) Type() string {
	switch f.k.field(f.c).Interface().(type) {
	case bool:
		return "bool"
	case time.Duration:
		return "duration"
	case Size:
		return "size"
	case []string:
		return "strings"
	case int, uint32:
		return "int"
	}
	return "string"
}

// IsBoolFlag lets --no-tls stand without a value.
func (f *flagValue) IsBoolFlag() bool { _, ok := f.k.field(f.c).Interface().(bool); return ok }

// Binding registers a command's flags and layers its configuration.
type Binding struct {
	cmd     string
	scratch Config
	flags   map[string]*flagValue
}

// Bind registers the flags of every key command cmd shows, with that
// command's defaults in their help.
func Bind(cmd string, fs *pflag.FlagSet) *Binding {
	b := &Binding{cmd: cmd, scratch: Default(cmd), flags: map[string]*flagValue{}}
	for _, k := range Keys() {
		if !k.ForCommand(cmd) {
			continue
		}
		fv := &flagValue{k: k, c: &b.scratch}
		help := k.Help
		if help == "" {
			help = k.Path
		}
		help += " (" + k.Env + ")"
		f := fs.VarPF(fv, k.Flag, k.Short, help)
		if fv.IsBoolFlag() {
			f.NoOptDefVal = "true"
		}
		b.flags[k.Flag] = fv
	}
	return b
}
