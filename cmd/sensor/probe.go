package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/loader"
)

func newProbeCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "probe",
		Short: "Check what this kernel offers the sensor, and what it lacks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return errors.New("probing loads test eBPF programs and needs root (try sudo)")
			}
			fs := loader.Probe()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(fs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FEATURE\tSTATUS\tUSED FOR\tDETAIL")
			for _, f := range fs {
				status := "yes"
				if !f.OK {
					status = "NO"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, status, f.Need, f.Detail)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if m := loader.Missing(fs); len(m) > 0 {
				return fmt.Errorf("%d required features are missing: the sensor cannot run here", len(m))
			}
			fmt.Fprintln(cmd.OutOrStdout(), "\nAll required features are present.")
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
