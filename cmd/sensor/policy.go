package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/gateway"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check the gateway's policy: lint validates a file, check answers one request",
		Long: `sensor run sits on the wire between the MCP client and the server and
enforces a policy (--policy FILE, or the built-in one: everything allowed,
results carrying secrets or instructions for the model redacted). A policy
file lists policies; the first whose servers match a server applies:

  version: "3"
  policies:
    - id: fs-readonly
      servers: ["npm:@modelcontextprotocol/server-filesystem"]
      tools: {allow: ["read_*", "list_*"], deny: ["write_*"]}
      arguments:
        - {tool: "read_*", condition: 'args.path.startsWith("/srv/")', reason: reads stay under /srv}
      resources: {read: ["file:///srv/**"]}
      prompts: {deny: ["internal_*"]}
      sampling: false
      results: {secrets: redact, instructions: deny}
      when:
        - {condition: server.tainted, deny_tools: ["*send*", "*post*"], reason: no network sink after a credential read}`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "lint FILE",
		Short: "Validate a policy file: keys, globs, CEL conditions (errors name the line)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			set, err := gateway.Load(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: %d policies valid (version %s)\n", args[0], len(set.Policies), set.Version)
			return nil
		},
	})
	var server, tool, argsJSON string
	var tainted bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Say what the policy decides for one tools/call (which policy, allowed or not, why)",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			set, err := gateway.Load(args[0])
			if err != nil {
				return err
			}
			var a map[string]any
			if argsJSON != "" {
				if err := json.Unmarshal([]byte(argsJSON), &a); err != nil {
					return fmt.Errorf("--args: not a JSON object: %w", err)
				}
			}
			pol := set.For(gateway.Server{Key: server, Name: server})
			if pol == nil {
				fmt.Fprintf(c.OutOrStdout(), "denied: no policy covers %s\n", server)
				return exitError{1}
			}
			ok, why := pol.Tool(tool, func() map[string]any { return a }, gateway.Threat{Tainted: tainted})
			if !ok {
				fmt.Fprintf(c.OutOrStdout(), "denied by policy %s: %s\n", pol.ID, why)
				return exitError{1}
			}
			fmt.Fprintf(c.OutOrStdout(), "allowed by policy %s\n", pol.ID)
			return nil
		},
	}
	check.Flags().StringVar(&server, "server", "", "the server's identity key or name (npm:@scope/name)")
	check.Flags().StringVar(&tool, "tool", "", "the tool called")
	check.Flags().StringVar(&argsJSON, "args", "", "its arguments, a JSON object")
	check.Flags().BoolVar(&tainted, "tainted", false, "the server has read a credential file")
	cmd.AddCommand(check)
	return cmd
}
