package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the sensor's configuration"}
	cmd.AddCommand(&cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file (default " + config.DefaultPath + ") with the environment's overrides",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path, must := config.DefaultPath, false
			if len(args) == 1 {
				path, must = args[0], true
			}
			cfg, err := config.Load(path, must)
			if err != nil {
				return err
			}
			if cfg.Rules != "" {
				if _, err := loadRulesFrom(cfg.Rules); err != nil {
					return fmt.Errorf("rules: %w", err)
				}
			}
			src := path
			if _, err := os.Stat(path); err != nil {
				src = "the built-in default (no " + path + ")"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: valid (profile %s, response %s, NATS %s)\n", src, cfg.Profile, cfg.Response,
				map[bool]string{true: cfg.NATS.URL, false: "off"}[cfg.NATS.URL != ""])
			return nil
		},
	})
	return cmd
}

func newInitCmd() *cobra.Command {
	var profile, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "init [--profile baseline|enterprise|strict] [--out FILE]",
		Short: "Write a commented starting configuration",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			tpl, err := config.Template(profile)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				fmt.Fprint(c.OutOrStdout(), tpl)
				return nil
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists (--force to overwrite)", out)
			}
			if err := os.WriteFile(out, []byte(tpl), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote %s (check it with: sensor config check %s)\n", out, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&profile, "profile", "baseline", "baseline, enterprise or strict")
	cmd.Flags().StringVar(&out, "out", "", "write here (default: stdout)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
