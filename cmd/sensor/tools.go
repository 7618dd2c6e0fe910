package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/correlate"
)

func newToolsCmd() *cobra.Command {
	var stateDir, server, tool, hash string
	cmd := &cobra.Command{
		Use:   "tools",
		Short: "Review pinned tool definitions: list, diff what changed, approve it",
		Long: `Every tool a server lists is pinned the first time it is seen (trust on first
use), by the server's identity. A definition that changes later (a rug pull)
raises tool_definition_changed, and sensor run's gateway keeps the tool from
the model and refuses its calls until a person approves the new definition:

  sensor tools diff --server npm:@acme/notes
  sensor tools approve --server npm:@acme/notes --tool add

Approvals take effect at the server's next launch (sensor run), or when the
daemon next reads its state. --state-dir is sensor run's state directory by
default.`,
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", config.DefaultStateDir+"/run", "the state directory whose pins to use (the daemon's: "+config.DefaultStateDir+")")
	cmd.PersistentFlags().StringVar(&server, "server", "", "the server's identity key (npm:@scope/name), as sensor servers and alerts show it")
	cmd.PersistentFlags().StringVar(&tool, "tool", "", "one tool (default: all of the server's)")
	open := func() (*correlate.Store, error) {
		st, err := correlate.OpenStore(stateDir)
		if err != nil {
			return nil, fmt.Errorf("reading the pins in %s: %w", stateDir, err)
		}
		return st, nil
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List pinned tools, marking those whose definition changed",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := open()
			if err != nil {
				return err
			}
			all := st.Tools()
			for _, s := range slices.Sorted(maps.Keys(all)) {
				if server != "" && s != server {
					continue
				}
				for _, n := range slices.Sorted(maps.Keys(all[s])) {
					r := all[s][n]
					state := "pinned"
					if r.LastHash != "" && r.LastHash != r.Hash {
						state = "CHANGED (sensor tools diff --server " + s + " --tool " + n + ")"
					}
					fmt.Fprintf(c.OutOrStdout(), "%s\t%s\t%s\n", s, n, state)
				}
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "diff",
		Short: "Show how the definitions of a server's changed tools differ from the pinned ones",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if server == "" {
				return fmt.Errorf("--server is missing: the identity key of the server (sensor tools list shows them)")
			}
			st, err := open()
			if err != nil {
				return err
			}
			recs := st.Tools()[server]
			n := 0
			for _, name := range slices.Sorted(maps.Keys(recs)) {
				r := recs[name]
				if (tool != "" && name != tool) || r.LastHash == "" || r.LastHash == r.Hash {
					continue
				}
				n++
				fmt.Fprintf(c.OutOrStdout(), "--- %s %s pinned %s\n+++ %s %s seen since (approve this one: --hash %s)\n", server, name, r.FirstSeen.Format(time.RFC3339), server, name, r.LastHash)
				lineDiff(c.OutOrStdout(), pretty(r.Definition), pretty(r.Last))
			}
			if n == 0 {
				fmt.Fprintf(c.OutOrStdout(), "no changed tool of %s\n", server)
			}
			return nil
		},
	})
	approve := &cobra.Command{
		Use:   "approve",
		Short: "Pin the definitions last seen of a server's changed tools (or one tool; --hash: only the one diffed)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if server == "" {
				return fmt.Errorf("--server is missing: the identity key of the server (sensor tools list shows them)")
			}
			done, err := correlate.ApproveFile(stateDir, server, tool, hash, time.Now())
			if err != nil {
				return fmt.Errorf("approving in %s: %w", stateDir, err)
			}
			if len(done) == 0 {
				if hash != "" {
					return fmt.Errorf("no changed tool of %s has the definition %s: it changed again since the diff (sensor tools diff)", server, hash)
				}
				return fmt.Errorf("no changed tool of %s to approve (sensor tools list)", server)
			}
			sort.Strings(done)
			fmt.Fprintf(c.OutOrStdout(), "approved %s of %s\n", strings.Join(done, ", "), server)
			return nil
		},
	}
	approve.Flags().StringVar(&hash, "hash", "", "approve only the definition of this hash (sensor tools diff prints it)")
	cmd.AddCommand(approve)
	return cmd
}

func pretty(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return []string{"(not kept: pinned by an older sensor)"}
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return strings.Split(string(raw), "\n")
	}
	return strings.Split(b.String(), "\n")
}

// lineDiff prints a and b as a line diff (longest common subsequence).
func lineDiff(w io.Writer, a, b []string) {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			fmt.Fprintln(w, "  "+a[i])
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintln(w, "+ "+b[j])
			j++
		default:
			fmt.Fprintln(w, "- "+a[i])
			i++
		}
	}
}
