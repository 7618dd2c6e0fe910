// Package compliance holds the frameworks `sensor report compliance`
// reports against: one YAML file each, requirement id -> the evidence
// that satisfies it (see README.md).
package compliance

import "embed"

// Frameworks are the shipped framework files.
//
//go:embed *.yaml
var Frameworks embed.FS
