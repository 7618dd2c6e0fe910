// Command sensor is the MCP Security Evolution runtime sensor: eBPF capture
// of MCP servers' JSON-RPC streams and side effects.
package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// exitError carries a process exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	if len(os.Args) > 1 && os.Args[1] == helperArg {
		os.Exit(runHelper(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == sandboxArg {
		os.Exit(runSandbox(os.Args[2:]))
	}
	// The pipeline hands each record from a ring reader to the core to the
	// responder: three goroutines that must each get a P. With one P per
	// CPU on a small host, a woken reader waited for one for up to 20 ms
	// while others ran their time slice (3 of 30 containment cycles on 2
	// vCPUs); with at least 4 Ps the kernel's scheduler runs it at once
	// (0 of 60, containment p99 20 -> 3.3 ms). GOMAXPROCS still wins.
	if os.Getenv("GOMAXPROCS") == "" && runtime.NumCPU() < 4 {
		runtime.GOMAXPROCS(4)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	root := newRoot()
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.code
	default:
		fmt.Fprintln(os.Stderr, "sensor:", err)
		return 1
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sensor",
		Short: "Runtime sensor for Model Context Protocol servers",
		Long: `sensor watches MCP servers from the kernel with eBPF: every JSON-RPC message on
their stdio, and every effect of their process tree (files opened, processes
run, connections made), linked to the calls that caused them.

Every flag can also be set in the environment as MCPSEC_<FLAG>, e.g.
MCPSEC_OUTPUT=json for --output json.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newTraceCmd(), newProbeCmd(), newRulesCmd(), newBaselineCmd(), newContainCmd(), newReleaseCmd(), newHardenCmd(), newRunCmd(), newPolicyCmd(), newToolsCmd(), newGatewayCmd(), newScanCmd(), newMCPCmd(), newReportCmd(), newFleetCmd(), newAuditCmd(), newConfigCmd(), newInitCmd(), newDaemonCmd(), newVersionCmd(), newManCmd())
	root.AddCommand(newStatusCmds()...)
	root.SetFlagErrorFunc(flagError)
	return root
}

var (
	badValueRE    = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)
	unknownFlagRE = regexp.MustCompile(`^unknown (?:shorthand )?flag: '?(-{1,2}[^' ]+)'?`)
)

// flagError says what is wrong with a flag in the user's terms: the flag
// and the value as written, what is accepted, and the flag meant by a
// misspelt one.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if m := badValueRE.FindStringSubmatch(msg); m != nil {
		value, flag, why := m[1], m[2], m[3]
		if i := strings.Index(flag, ", "); i >= 0 {
			flag = flag[i+2:] // "-o, --output"
		}
		if strings.Contains(why, "strconv.") {
			typ := "a whole number"
			if f := c.Flags().Lookup(strings.TrimLeft(flag, "-")); f != nil && strings.Contains(f.Value.Type(), "bool") {
				typ = "true or false"
			}
			return fmt.Errorf("%s %s: not %s (e.g. %s 4242)", flag, value, typ, flag)
		}
		return fmt.Errorf("%s %s: %s", flag, value, why)
	}
	if m := unknownFlagRE.FindStringSubmatch(msg); m != nil {
		var names []string
		c.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, "--"+f.Name) })
		return fmt.Errorf("unknown flag %s%s (sensor %s --help lists them)", m[1], suggestion(m[1], names), c.Name())
	}
	return err
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "sensor", version)
		},
	}
}
