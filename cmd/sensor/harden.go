package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/contain/harden"
	"github.com/mcpsec/sensor/pkg/correlate"
)

func newHardenCmd() *cobra.Command {
	var server, stateDir, out string
	cmd := &cobra.Command{
		Use:   "harden --server S [--out DIR]",
		Short: "Turn a server's learned baseline into a seccomp profile and a systemd drop-in",
		Long: `harden reads the baselines the sensor learned for a server (its "server" field
in "sensor baseline export") and writes confinement it can run under: an OCI
seccomp profile refusing the escape syscalls it never used (seccomp.json) and a
systemd drop-in with the matching SystemCallFilter, IPAddressAllow and
ReadWritePaths (hardening.conf). Without --out both are printed.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if server == "" {
				return fmt.Errorf("--server is required; the servers with baselines are listed by `sensor baseline export`")
			}
			st, err := correlate.OpenStore(stateDir)
			if err != nil {
				return err
			}
			exp := st.Export(server)
			keys := make([]string, 0, len(exp))
			for k := range exp {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var profiles []*correlate.Profile
			for _, k := range keys {
				profiles = append(profiles, exp[k])
			}
			p, err := harden.Make(server, profiles)
			if err != nil {
				return err
			}
			sc, err := json.MarshalIndent(p.Seccomp, "", "  ")
			if err != nil {
				return err
			}
			if out == "" {
				fmt.Fprintf(c.OutOrStdout(), "# seccomp.json\n%s\n\n# hardening.conf\n%s", sc, p.DropIn)
				return nil
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "seccomp.json"), append(sc, '\n'), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(out, "hardening.conf"), []byte(p.DropIn), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s and %s\n", filepath.Join(out, "seccomp.json"), filepath.Join(out, "hardening.conf"))
			return nil
		},
	}
	cmd.Flags().StringVar(&server, "server", "", "the server, as its baselines name it (executable and arguments)")
	cmd.Flags().StringVar(&stateDir, "state-dir", "/var/lib/mcp-sensor", "the sensor's state directory")
	cmd.Flags().StringVar(&out, "out", "", "write seccomp.json and hardening.conf here")
	return cmd
}
