package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpsec/sensor/pkg/config"
)

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check the sensor's configuration"}
	var forCmd string
	check := &cobra.Command{
		Use:   "check [FILE]",
		Short: "Validate a configuration file (default " + config.DefaultPath + ") with the environment's overrides",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path, must := config.DefaultPath, false
			if len(args) == 1 {
				path, must = args[0], true
			}
			switch forCmd {
			case config.Daemon, config.Trace, config.Run:
			default:
				return fmt.Errorf("--for %q: use daemon, trace or run", forCmd)
			}
			l, err := config.Bind(forCmd, pflag.NewFlagSet(forCmd, pflag.ContinueOnError)).Load(path, must, os.LookupEnv)
			if err != nil {
				return err
			}
			cfg := l.Config
			if cfg.Rules != "" {
				if _, err := loadRulesFrom(cfg.Rules); err != nil {
					return fmt.Errorf("%s: rules: %w", l.Sources.Of("rules"), err)
				}
			}
			src := l.File
			if src == "" {
				src = "the built-in default (no " + path + ")"
			}
			prof, mode := cfg.Effective()
			fmt.Fprintf(c.OutOrStdout(), "%s: valid (profile %s, response %s, NATS %s)\n", src, prof.Name, mode,
				map[bool]string{true: cfg.NATS.URL, false: "off"}[cfg.NATS.URL != ""])
			return nil
		},
	}
	check.Flags().StringVar(&forCmd, "for", config.Daemon, "check it as this command reads it: daemon, trace or run")
	cmd.AddCommand(check)
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
	_ = cmd.RegisterFlagCompletionFunc("profile", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return config.ProfileNames(), cobra.ShellCompDirectiveNoFileComp
	})
	cmd.Flags().StringVar(&out, "out", "", "write here (default: stdout)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	return cmd
}
