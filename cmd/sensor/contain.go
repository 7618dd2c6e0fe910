package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/identity"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/proc"
)

type containFlags struct {
	socket   string
	cgroup   string
	pid      int
	stateDir string
	all      bool
	list     bool
}

func (f *containFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cgroup, "cgroup", "", "the server's cgroup (a path, absolute or under the cgroup2 root)")
	cmd.Flags().IntVar(&f.pid, "pid", 0, "a process of the server (its cgroup is used)")
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "/var/lib/mcp-sensor", "the sensor's state directory (the list of contained servers)")
	cmd.Flags().StringVar(&f.socket, "socket", "", "ask the daemon on this control socket to do it (default: do it directly)")
}

func newContainCmd() *cobra.Command {
	f := &containFlags{}
	cmd := &cobra.Command{
		Use:   "contain (--cgroup PATH | --pid N | --list)",
		Short: "Contain a server: freeze its cgroup and deny its egress in the kernel",
		Long: `contain freezes the server's cgroup (processes that fork meanwhile are caught
too) and sets its kernel policy to refuse every connect and send (EPERM) and to
kill it at its next exec. The policy lives in pinned BPF maps and the freeze in
the cgroup: both outlive the sensor, and a restarted sensor keeps them. A
server that shares its cgroup with others (a stdio server in its client's
cgroup) is moved into a cgroup of its own first, so the client is not frozen.
Only "sensor release" undoes it.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.list {
				return listContained(c, f)
			}
			if f.socket != "" {
				return viaDaemon(c.OutOrStdout(), f, "contain")
			}
			return containServer(c.OutOrStdout(), f)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.list, "list", false, "list the contained servers and their state")
	return cmd
}

func newReleaseCmd() *cobra.Command {
	f := &containFlags{}
	cmd := &cobra.Command{
		Use:   "release (--cgroup PATH | --pid N | --all)",
		Short: "Release a contained server: thaw it and lift its kernel policy",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if f.socket != "" {
				return viaDaemon(c.OutOrStdout(), f, "release")
			}
			return releaseServer(c.OutOrStdout(), f)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&f.all, "all", false, "release every contained server")
	return cmd
}

// manager is a containment manager over the pinned maps of the sensor
// that runs (or ran) on this host; it loads no programs.
func manager(stateDir string) (*contain.Manager, func(), error) {
	m := &contain.Manager{StateDir: stateDir}
	pm, err := loader.PinnedPolicies()
	if err != nil {
		return m, func() {}, err
	}
	m.Policies = pm
	return m, func() { pm.Close() }, nil
}

func listContained(c *cobra.Command, f *containFlags) error {
	m, done, _ := manager(f.stateDir)
	defer done()
	list, err := m.List()
	if err != nil {
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(c.OutOrStdout(), "no server is contained")
		return nil
	}
	for _, x := range list {
		state := "gone"
		if !x.Gone {
			state = map[bool]string{true: "frozen", false: "running"}[x.Frozen] + ", egress " + x.Egress
		}
		since := ""
		if !x.Since.IsZero() {
			since = "since " + x.Since.Format(time.RFC3339)
		}
		fmt.Fprintf(c.OutOrStdout(), "%s\t%s\t%s\t%s\n", x.Cgroup, nameOr(x.Name, contain.Target{}), since, state)
	}
	return nil
}

// target is the server --cgroup or --pid names, with its name (what it
// runs, from /proc) for its cgroup and the records.
func (f *containFlags) target() (contain.Target, error) {
	switch {
	case f.cgroup != "" && f.pid != 0:
		return contain.Target{}, errors.New("--cgroup and --pid are exclusive")
	case f.cgroup != "":
		return contain.Target{Cgroup: f.cgroup}, nil
	case f.pid > 0:
		t := contain.Target{PID: f.pid}
		if s, err := identity.NewResolver().Resolve(f.pid); err == nil {
			t.Name = s.Identity.String()
		} else {
			return t, fmt.Errorf("--pid %d: no such process", f.pid)
		}
		return t, nil
	}
	return contain.Target{}, errors.New("give --cgroup PATH or --pid N")
}

// containServer freezes and quarantines the server f names, and records it.
func containServer(w io.Writer, f *containFlags) error {
	t, err := f.target()
	if err != nil {
		return err
	}
	m, done, perr := manager(f.stateDir)
	defer done()
	by := fmt.Sprint("uid ", os.Getuid())
	c, at, err := m.Contain(t, by)
	if perr != nil {
		err = errors.Join(err, fmt.Errorf("egress not denied: %w", perr))
	}
	auditAction(f.stateDir, "contain", c.Cgroup, c.Name, by, err)
	if c.Cgroup == "" {
		return err
	}
	fmt.Fprintf(w, "contained %s (%s, frozen at %s, egress %s)\n", c.Cgroup, nameOr(c.Name, t), at.Format(time.RFC3339Nano), c.Egress)
	return err
}

// releaseServer thaws the server f names (or all) and lifts its policy.
func releaseServer(w io.Writer, f *containFlags) error {
	m, done, _ := manager(f.stateDir)
	defer done()
	var targets []string
	if f.all {
		list, err := m.List()
		if err != nil {
			return err
		}
		for _, x := range list {
			targets = append(targets, x.Cgroup)
		}
	} else {
		t, err := f.target()
		if err != nil {
			return err
		}
		t.Name = "" // an existing cgroup, not a new one
		if t.Cgroup == "" {
			rel, err := contain.CgroupOfPID(proc.Host, t.PID)
			if err != nil {
				return fmt.Errorf("--pid %d: %w", t.PID, err)
			}
			t.Cgroup = strings.TrimPrefix(rel, "/")
		}
		targets = []string{t.Cgroup}
	}
	var errs []error
	by := fmt.Sprint("uid ", os.Getuid())
	for _, path := range targets {
		err := m.Release(path)
		auditAction(f.stateDir, "release", path, "", by, err)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(w, "released %s\n", path)
	}
	return errors.Join(errs...)
}

// viaDaemon asks the daemon to contain or release.
func viaDaemon(w io.Writer, f *containFlags, cmd string) error {
	return control.Call(f.socket, control.Request{Cmd: cmd, Cgroup: f.cgroup, PID: f.pid}, func(b []byte) error {
		var v struct{ Result string }
		_ = json.Unmarshal(b, &v)
		_, err := fmt.Fprintln(w, v.Result)
		return err
	})
}
