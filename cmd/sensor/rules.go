package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/pipeline"
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
	cmd.AddCommand(test, newRulesShowCmd(), &cobra.Command{
		Use:   "fields",
		Short: "Print the variables and fields rule conditions and outputs may use (the rule reference)",
		Args:  cobra.NoArgs,
		Run: func(c *cobra.Command, _ []string) {
			fmt.Fprint(c.OutOrStdout(), correlate.Reference())
		},
	})
	return cmd
}

func newRulesShowCmd() *cobra.Command {
	var dir string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print a rule as it runs: after the site's overrides, with where each part came from",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rs, err := loadRulesFrom(dir)
			if err != nil {
				return err
			}
			r, ok := rs.Rule(args[0])
			if !ok {
				return fmt.Errorf("no rule %q in %s%s", args[0], rs.Dir, suggestion(args[0], rs.Names()))
			}
			if asJSON {
				b, _ := json.MarshalIndent(r, "", "  ")
				fmt.Fprintln(c.OutOrStdout(), string(b))
				return nil
			}
			printRule(c.OutOrStdout(), r, rs)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "rules", "", "a site's rule directory, read over the built-in rules (default: "+pipeline.DefaultRulesDir+" if it exists)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printRule(w io.Writer, r *correlate.Rule, rs *correlate.RuleSet) {
	from := func(part string) string {
		if o := r.Origins[part]; o != "" {
			return "   (" + o + ")"
		}
		return ""
	}
	state := "enabled"
	if _, on := rs.Rule(r.Name); on {
		for _, d := range rs.Disabled {
			if d == r {
				state = "disabled"
			}
		}
	}
	fmt.Fprintf(w, "rule %s: %s%s\n", r.Name, state, from("enabled"))
	fmt.Fprintf(w, "  defined    %s\n", r.Origins["defined"])
	fmt.Fprintf(w, "  when       %s %s%s\n", r.When, strings.Join(r.Types, ","), from("types"))
	fmt.Fprintf(w, "  severity   %s%s\n", r.Severity, from("severity"))
	if r.Action != "" {
		fmt.Fprintf(w, "  action     %s%s\n", r.Action, from("action"))
	}
	fmt.Fprintf(w, "  tags       %s%s\n", strings.Join(r.Tags, " "), from("tags"))
	fmt.Fprintf(w, "  desc       %s%s\n", r.Desc, from("desc"))
	fmt.Fprintf(w, "  output     %s%s\n", r.Output, from("output"))
	fmt.Fprintf(w, "  condition  %s%s\n", strings.TrimSpace(r.Condition), from("condition"))
	for _, e := range r.Exceptions {
		fmt.Fprintf(w, "  exception  %s (%s): %s\n", e.Name, e.Origin, e.Reason)
		for _, t := range e.Values {
			var parts []string
			for i, f := range e.Fields {
				comp := "="
				if len(e.Comps) > i {
					comp = e.Comps[i]
				}
				parts = append(parts, fmt.Sprintf("%s %s %v", f, comp, t[i]))
			}
			fmt.Fprintf(w, "               quiet when %s\n", strings.Join(parts, " and "))
		}
	}
	fmt.Fprintf(w, "  runs as    %s\n", r.Effective)
}

// suggestion names the closest of names to s, if one is near.
func suggestion(s string, names []string) string {
	best, bestD := "", 4
	for _, n := range names {
		if d := levenshtein(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

func ruleFixtures(r *correlate.Rule) []map[string]any { return r.FireFixtures() }

// loadRules loads the built-in set with DIR on top, or alone.
func loadRules(args []string) (*correlate.RuleSet, error) {
	if len(args) == 0 {
		return loadRulesFrom("")
	}
	if st, err := os.Stat(args[0]); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory of rule files", args[0])
	}
	return loadRulesFrom(args[0])
}
