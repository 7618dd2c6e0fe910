package identity

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A server confined by its own configuration file (`--config
// server.json`) names its directories there, not on its command line. The
// files its argv names (JSON or YAML, small) are read, and the absolute
// directories under keys that name roots (allowed_dir, roots, workspace,
// paths, ...) are its roots.

// configMax bounds what is read of a configuration file.
const configMax = 256 << 10

// configFile is v as a configuration file that exists (relative to cwd),
// or "".
func configFile(cwd, v string) string {
	switch strings.ToLower(filepath.Ext(v)) {
	case ".json", ".yaml", ".yml":
	default:
		return ""
	}
	if !filepath.IsAbs(v) {
		if cwd == "" {
			return ""
		}
		v = filepath.Join(cwd, v)
	}
	st, err := os.Stat(v)
	if err != nil || !st.Mode().IsRegular() || st.Size() > configMax {
		return ""
	}
	return filepath.Clean(v)
}

// configRoots reads the root directories a configuration file names.
func configRoots(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var doc any
	if strings.EqualFold(filepath.Ext(path), ".json") {
		if json.Unmarshal(b, &doc) != nil {
			return nil
		}
	} else if yaml.Unmarshal(b, &doc) != nil {
		return nil
	}
	var out []string
	walkConfig(doc, "", false, &out, 0)
	return out
}

// walkConfig collects the absolute, existing directories found under keys
// that name roots (and in lists under them).
func walkConfig(v any, key string, rootKey bool, out *[]string, depth int) {
	if depth > 8 || len(*out) >= 64 {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			walkConfig(y, k, rootKey || rootVar(strings.ToUpper(k)), out, depth+1)
		}
	case []any:
		for _, y := range x {
			walkConfig(y, key, rootKey, out, depth+1)
		}
	case string:
		if !rootKey || x == "/" {
			return
		}
		if d := existingDir("", x, true); d != "" && d != "/" && !contains(*out, d) {
			*out = append(*out, d)
		}
	}
}
