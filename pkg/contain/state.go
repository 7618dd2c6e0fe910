package contain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// ContainedRecord is a contained server in the state file.
type ContainedRecord struct {
	Server   string    `json:"server"`
	Cgroup   string    `json:"cgroup"`
	CgroupID uint64    `json:"cgroup_id"`
	Since    time.Time `json:"since"`
}

// StateFile holds the servers under containment, so a restarted sensor
// re-adopts them (and never releases them by itself).
const StateFile = "contained.json"

// ReadState returns the contained servers recorded in dir.
func ReadState(dir string) ([]ContainedRecord, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []ContainedRecord
	return out, json.Unmarshal(b, &out)
}

// WriteState records the contained servers (atomically).
func WriteState(dir string, recs []ContainedRecord) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(recs, "", " ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, StateFile))
}
