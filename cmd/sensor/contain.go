package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/loader"
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

func listContained(c *cobra.Command, f *containFlags) error {
	recs, err := contain.ReadState(f.stateDir)
	if err != nil {
		return err
	}
	pm, perr := loader.PinnedPolicies()
	for _, r := range recs {
		state := "gone"
		if cg, err := contain.Open(r.Cgroup); err == nil {
			frozen, _ := cg.Frozen()
			state = map[bool]string{true: "frozen", false: "running"}[frozen]
			if perr == nil {
				if p, ok := pm.Get(cg.ID); ok && p.Flags&loader.CgQuarantine != 0 {
					state += ", egress denied"
				}
			}
			cg.Close()
		}
		fmt.Fprintf(c.OutOrStdout(), "%s\t%s\tsince %s\t%s\n", r.Cgroup, r.Server, r.Since.Format(time.RFC3339), state)
	}
	if perr == nil {
		pm.Close()
	}
	return nil
}

// serverCgroup finds the cgroup named by --cgroup or --pid. With own, a
// process outside the sensor's cgroups is moved into one of its own.
func serverCgroup(f *containFlags, own bool) (*contain.Cgroup, error) {
	switch {
	case f.cgroup != "" && f.pid != 0:
		return nil, errors.New("--cgroup and --pid are exclusive")
	case f.cgroup != "":
		return contain.Open(f.cgroup)
	case f.pid > 0:
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", f.pid))
		if err != nil {
			return nil, fmt.Errorf("--pid %d: no such process", f.pid)
		}
		rel := ""
		for _, ln := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(ln, "0::"); ok {
				rel = p
			}
		}
		if strings.Contains(rel, "/"+contain.Parent+"/") || !own {
			return contain.Open(strings.TrimPrefix(rel, "/"))
		}
		cg, err := contain.Create(fmt.Sprintf("server-%d", f.pid))
		if err != nil {
			return nil, err
		}
		for _, p := range contain.Tree(f.pid) {
			if err := cg.Move(p); err != nil && p == f.pid {
				return nil, fmt.Errorf("moving %d into %s: %w", p, cg.Path, err)
			}
		}
		return cg, nil
	}
	return nil, errors.New("give --cgroup PATH or --pid N")
}

// containServer freezes and quarantines the server f names, and records it.
func containServer(w io.Writer, f *containFlags) error {
	cg, err := serverCgroup(f, true)
	if err != nil {
		return err
	}
	defer cg.Close()
	var errs []error
	denied := "egress denied"
	if pm, err := loader.PinnedPolicies(); err != nil {
		errs = append(errs, fmt.Errorf("egress not denied: %w", err))
	} else {
		p, _ := pm.Get(cg.ID)
		errs = append(errs, pm.Set(cg.ID, p.Flags|loader.CgQuarantine|loader.CgKillOnExec))
		pm.Close()
		if !loader.EgressHooked(filepath.Dir(cg.Path)) {
			denied = "egress NOT denied: no sensor has put the egress hooks on " + filepath.Dir(cg.Path) + " (it will be once one runs with --response enforce)"
		}
	}
	at, err := cg.Freeze(2 * time.Second)
	errs = append(errs, err)
	recs, _ := contain.ReadState(f.stateDir)
	recs = append(recs, contain.ContainedRecord{Server: fmt.Sprint("pid ", f.pid), Cgroup: cg.Path, CgroupID: cg.ID, Since: time.Now()})
	errs = append(errs, contain.WriteState(f.stateDir, recs))
	err = errors.Join(errs...)
	ev := contain.AuditEvent{Action: "contain", Cgroup: cg.Path, By: fmt.Sprint("uid ", os.Getuid())}
	if err != nil {
		ev.Errors = []string{err.Error()}
	}
	errs = append(errs, contain.Audit(f.stateDir, ev))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintf(w, "contained %s (frozen at %s, %s)\n", cg.Path, at.Format(time.RFC3339Nano), denied)
	return nil
}

// releaseServer thaws the server f names (or all) and lifts its policy.
func releaseServer(w io.Writer, f *containFlags) error {
	recs, err := contain.ReadState(f.stateDir)
	if err != nil {
		return err
	}
	var targets []string
	if f.all {
		for _, r := range recs {
			targets = append(targets, r.Cgroup)
		}
	} else {
		cg, err := serverCgroup(f, false)
		if err != nil {
			return err
		}
		targets = []string{cg.Path}
		cg.Close()
	}
	pm, perr := loader.PinnedPolicies()
	var errs []error
	for _, path := range targets {
		cg, err := contain.Open(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if perr == nil {
			if p, ok := pm.Get(cg.ID); ok {
				// keep an allow-list the server was launched with
				if rest := p.Flags &^ (loader.CgQuarantine | loader.CgKillOnExec | loader.CgStopOnExec | loader.CgTainted); rest != 0 {
					errs = append(errs, pm.Set(cg.ID, rest))
				} else {
					errs = append(errs, pm.Delete(cg.ID))
				}
			}
			errs = append(errs, pm.ClearTaint(cg.ID))
		}
		errs = append(errs, contain.Unthrottle(cg))
		ev := contain.AuditEvent{Action: "release", Cgroup: cg.Path, By: fmt.Sprint("uid ", os.Getuid())}
		if _, err := cg.Thaw(2 * time.Second); err != nil {
			errs = append(errs, err)
			ev.Errors = []string{err.Error()}
		} else {
			fmt.Fprintf(w, "released %s\n", cg.Path)
		}
		errs = append(errs, contain.Audit(f.stateDir, ev))
		cg.Close()
		kept := recs[:0]
		for _, r := range recs {
			if r.Cgroup != path {
				kept = append(kept, r)
			}
		}
		recs = kept
	}
	if perr == nil {
		pm.Close()
	}
	errs = append(errs, contain.WriteState(f.stateDir, recs))
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
