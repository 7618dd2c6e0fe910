package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/correlate"
)

func newBaselineCmd() *cobra.Command {
	var stateDir, server string
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Export or reset the learned baselines (per server and tool)",
		Long: `Baselines are what each server, and each of its tools, did during its
learning window (path prefixes, destinations, executables, effect types); after
the window, effects outside them raise anomaly alerts. They live in the state
directory with the first-seen tool definitions. A server is named by its
executable and arguments, as in the profiles' "server" field.`,
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", "/var/lib/mcp-sensor", "the sensor's state directory")
	cmd.PersistentFlags().StringVar(&server, "server", "", "only this server (its \"server\" field); default: all")
	cmd.AddCommand(&cobra.Command{
		Use:   "export",
		Short: "Print the baselines as JSON",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := correlate.OpenStore(stateDir)
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(st.Export(server), "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), string(b))
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "reset",
		Short: "Forget baselines so they learn again",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			st, err := correlate.OpenStore(stateDir)
			if err != nil {
				return err
			}
			n := st.Reset(server)
			if err := st.Save(); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "forgot %d profiles\n", n)
			return nil
		},
	})
	return cmd
}
