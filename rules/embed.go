// Package rules holds the shipped rule set: YAML files of lists, macros and
// rules with CEL conditions (see README.md), embedded in the sensor so it
// judges with them when no rule directory is given.
package rules

import "embed"

// Files are the shipped rule files.
//
//go:embed *.yaml
var Files embed.FS
