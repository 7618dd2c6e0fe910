package main

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/correlate"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check rule files: lint validates them, test runs their fixtures",
		Long: `Rules are YAML files of lists, macros and rules whose conditions are CEL
expressions over server, session, call, effect, message and tool (see
rules/README.md). Without DIR these commands use the rule set built into the
sensor.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "lint [DIR]",
		Short: "Validate a rule directory: syntax, names, conditions, templates, fixtures",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rs, err := loadRules(args)
			if err != nil {
				return err
			}
			bySev := map[string]int{}
			for _, r := range rs.Rules {
				bySev[r.Severity]++
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: %d rules valid (%d critical, %d high, %d medium, %d low)\n",
				rs.Dir, len(rs.Rules), bySev["critical"], bySev["high"], bySev["medium"], bySev["low"])
			return nil
		},
	})
	var jsonOut bool
	test := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run every rule's fixtures: fire fixtures must fire, quiet ones must not",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rs, err := loadRules(args)
			if err != nil {
				return err
			}
			fails, st := rs.Test()
			if jsonOut {
				out := map[string]any{"rules": st.Rules, "fire": st.Fire, "quiet": st.Quiet, "untested": st.Untested}
				var fs []string
				for _, f := range fails {
					fs = append(fs, f.String())
				}
				out["failures"] = fs
				b, _ := json.Marshal(out)
				fmt.Fprintln(c.OutOrStdout(), string(b))
			} else {
				for _, f := range fails {
					fmt.Fprintln(c.OutOrStdout(), "FAIL", f)
				}
				var untested []string
				for _, r := range rs.Rules {
					if len(ruleFixtures(r)) == 0 {
						untested = append(untested, r.Name)
					}
				}
				sort.Strings(untested)
				for _, n := range untested {
					fmt.Fprintln(c.OutOrStdout(), "WARN rule", n, "has no fixture that must fire")
				}
				fmt.Fprintf(c.OutOrStdout(), "%s: %d rules, %d fire and %d quiet fixtures, %d failed\n",
					rs.Dir, st.Rules, st.Fire, st.Quiet, len(fails))
			}
			if len(fails) > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	test.Flags().BoolVar(&jsonOut, "json", false, "print the result as one JSON object")
	cmd.AddCommand(test)
	return cmd
}

func ruleFixtures(r *correlate.Rule) []map[string]any { return r.FireFixtures() }

// loadRules loads DIR, or the built-in set.
func loadRules(args []string) (*correlate.RuleSet, error) {
	if len(args) == 0 {
		return loadRulesFrom("")
	}
	if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory of rule files", args[0])
	}
	return loadRulesFrom(args[0])
}
