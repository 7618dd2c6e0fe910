package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hashicorp/go-hclog"
	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/loader"
	"github.com/mcpsec/sensor/pkg/pipeline"
)

// command is a sensor command configured from config.Config: its flags,
// the MCPSEC_ variables and a YAML file, layered by one binding.
type command struct {
	name    string
	binding *config.Binding
	cfgPath string
}

// bindConfig registers the configuration's flags on cmd, and --config
// (defaultPath: read if present; "": none unless given).
func bindConfig(cmd *cobra.Command, name, defaultPath string) *command {
	c := &command{name: name, binding: config.Bind(name, cmd.Flags()), cfgPath: defaultPath}
	help := "read this configuration file first (flags and MCPSEC_ variables win)"
	if defaultPath != "" {
		help += "; read if it exists"
	}
	cmd.Flags().StringVar(&c.cfgPath, "config", defaultPath, help)
	return c
}

// load layers the configuration: a file given with --config must exist.
func (c *command) load(cmd *cobra.Command) (config.Loaded, error) {
	must := cmd.Flags().Changed("config")
	return c.binding.Load(c.cfgPath, must, os.LookupEnv)
}

// newLog logs to stderr: JSON when it is not a terminal (the journal).
func newLog(level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "sensor", Level: hclog.LevelFromString(level), Output: os.Stderr,
		JSONFormat: !isatty.IsTerminal(os.Stderr.Fd())})
}

// loadFailed adds what the kernel lacks to a load error.
func loadFailed(err error, log hclog.Logger) error {
	var le *loader.LoadError
	if !errors.As(err, &le) {
		return err
	}
	for _, m := range loader.Missing(loader.Probe()) {
		log.Error("this kernel lacks a required feature", "feature", m.Name, "detail", m.Detail)
	}
	return fmt.Errorf("%w (see `sensor probe`)", err)
}

// stopOnSignals cancels the context on the first SIGINT or SIGTERM (stop
// tracing, stop a traced command gracefully) and closes force on the second
// (kill the command now). SIGHUP asks for the rules to be reloaded.
func stopOnSignals(log hclog.Logger) (context.Context, <-chan struct{}, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	reload := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 2)
	hup := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	go func() {
		sig := <-sigs
		log.Info("stopping", "signal", sig.String())
		cancel()
		<-sigs
		log.Info("second signal: killing the traced command now")
		close(force)
	}()
	return ctx, force, reload
}

// loadRulesFrom loads a rule directory, or the built-in set for "".
func loadRulesFrom(dir string) (*correlate.RuleSet, error) { return pipeline.LoadRules(dir) }

// checkPID accepts a running process, by its process id (not a thread's),
// other than the sensor itself.
func checkPID(p int) error {
	if p <= 0 {
		return fmt.Errorf("--pid %d: not a process id", p)
	}
	if p == os.Getpid() {
		return fmt.Errorf("--pid %d: that is the sensor itself", p)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
	if err != nil {
		return fmt.Errorf("--pid %d: no such process", p)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok && strings.TrimSpace(v) != strconv.Itoa(p) {
			return fmt.Errorf("--pid %d: a thread of process %s; give the process id", p, strings.TrimSpace(v))
		}
	}
	return nil
}
