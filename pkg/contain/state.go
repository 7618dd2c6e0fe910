package contain

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpsec/sensor/pkg/audit"
)

// ContainedRecord is a contained server in the state file.
type ContainedRecord struct {
	Server   string    `json:"server"`
	Name     string    `json:"name,omitempty"`
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

// AuditDir is where the audit trail lives in the state directory.
const AuditDir = "audit"

// AuditEvent is a containment action in the audit trail.
type AuditEvent struct {
	Action string   `json:"action"` // contain, release, response
	Cgroup string   `json:"cgroup,omitempty"`
	Server string   `json:"server,omitempty"`
	Rule   string   `json:"rule,omitempty"`
	Done   []string `json:"done,omitempty"`
	Errors []string `json:"errors,omitempty"`
	By     string   `json:"by"` // who: "sensor" (automatic) or "uid N" (a command)
}

// Audit appends an event to the audit trail of the state directory dir.
func Audit(dir string, ev AuditEvent) error {
	if dir == "" {
		return nil
	}
	l, err := audit.Open(filepath.Join(dir, AuditDir), 64<<20)
	if err != nil {
		return err
	}
	_, err = l.Append(ev.Action, ev)
	return err
}
