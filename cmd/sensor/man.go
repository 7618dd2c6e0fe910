package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func newManCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "man [--dir DIR]",
		Short: "Write the manual pages (sensor(1), sensor-trace(1), ...) made from the commands' help",
		Long: `man writes one manual page per command, made from the same text as --help,
so they cannot drift apart. make install puts them in /usr/local/share/man/man1;
"sensor completion bash|zsh|fish" prints the shell completion.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("making %s: %w", dir, err)
			}
			root := c.Root()
			root.DisableAutoGenTag = true
			hdr := &doc.GenManHeader{Title: "SENSOR", Section: "1", Source: "MCP Security Evolution " + version, Manual: "MCP Security Evolution"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fmt.Errorf("writing the manual pages: %w", err)
			}
			n, _ := filepath.Glob(filepath.Join(dir, "*.1"))
			fmt.Fprintf(c.OutOrStdout(), "wrote %d manual pages to %s\n", len(n), dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "write the pages here")
	return cmd
}
