package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/contain"
)

func newAuditCmd() *cobra.Command {
	var stateDir string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check the tamper-evident audit trail of alerts and actions",
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", "/var/lib/mcp-sensor", "the sensor's state directory (the trail is in its audit/)")
	cmd.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Verify the hash chain: any edited, removed or reordered record, or a cut tail, is named",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			dir := filepath.Join(stateDir, contain.AuditDir)
			n, err := audit.Verify(dir)
			if err != nil {
				return fmt.Errorf("audit trail %s is NOT intact after %d good records: %w", dir, n, err)
			}
			fmt.Fprintf(c.OutOrStdout(), "audit trail %s intact: %d records\n", dir, n)
			return nil
		},
	})
	return cmd
}
