package fleet

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// InForceFile is where a daemon keeps the indicators in force, in its
// state directory, for the commands that judge without NATS (sensor
// scan refuses the packages in it).
const InForceFile = "fleet-indicators.json"

// WriteInForce writes the indicators in force (atomically).
func WriteInForce(path string, ins []*Indicator) error {
	sort.Slice(ins, func(i, j int) bool { return ins[i].FirstSeen.Before(ins[j].FirstSeen) })
	b, err := json.MarshalIndent(ins, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadInForce reads them back (none when there is no file).
func ReadInForce(path string) ([]Indicator, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Indicator
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out, nil
}
