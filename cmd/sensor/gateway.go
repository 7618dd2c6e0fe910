package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/mcpsec/sensor/pkg/audit"
	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/contain"
	"github.com/mcpsec/sensor/pkg/gateway"
)

func newGatewayCmd() *cobra.Command {
	var cc *command
	cmd := &cobra.Command{
		Use:   "gateway --gateway-listen ADDR --gateway-upstream URL",
		Short: "Front a Streamable HTTP MCP server with the policy gateway",
		Long: `gateway is a reverse proxy for an MCP server over Streamable HTTP that
enforces the same policy as sensor run (--policy FILE, or the built-in one):
each POSTed message is judged before it reaches the server, answers (JSON or
an event stream) are filtered and scanned on their way back. It refuses a
Host header that is not its own (DNS rebinding), an Origin not in
--gateway-origins, a request without a bearer token when --gateway-tokens is
set, and a session id presented by another principal than the one that
created the session. Every decision goes to the audit trail in --state-dir.

  sensor gateway --gateway-listen 127.0.0.1:8931 --gateway-upstream http://127.0.0.1:3000/mcp \
      --policy /etc/mcp-sensor/policy.yaml --gateway-tokens /etc/mcp-sensor/tokens`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := cc.load(c)
			if err != nil {
				return err
			}
			return runGateway(l)
		},
	}
	cc = bindConfig(cmd, config.Gateway, "")
	return cmd
}

func runGateway(l config.Loaded) error {
	cfg := l.Config
	log := newLog(cfg.LogLevel)
	trail, err := audit.Open(filepath.Join(cfg.StateDir, contain.AuditDir), 64<<20)
	if err != nil {
		return fmt.Errorf("opening the audit trail in %s: %w", cfg.StateDir, err)
	}
	defer trail.Close()
	ctx, _, _ := stopOnSignals(log)
	return serveGateway(ctx, l, func(d gateway.Decision) {
		if _, err := trail.Append("decision", d); err != nil {
			log.Warn("the audit trail refused a decision", "error", err)
		}
	}, log)
}

// serveGateway serves the HTTP gateway the configuration's gateway section
// describes until ctx ends; audit records each decision.
func serveGateway(ctx context.Context, l config.Loaded, audit func(gateway.Decision), log hclog.Logger) error {
	cfg := l.Config
	gc := cfg.Gateway
	if gc.Listen == "" || gc.Upstream == "" {
		return errors.New("give --gateway-listen ADDR and --gateway-upstream URL (or gateway.listen and gateway.upstream)")
	}
	up, err := url.Parse(gc.Upstream)
	if err != nil || up.Scheme == "" || up.Host == "" {
		return fmt.Errorf("%s: gateway.upstream %q: not a URL, e.g. http://127.0.0.1:3000/mcp", l.Sources.Of("gateway.upstream"), gc.Upstream)
	}
	set := gateway.Default()
	if cfg.Policy != "" {
		if set, err = gateway.Load(cfg.Policy); err != nil {
			return fmt.Errorf("%s: %w", l.Sources.Of("policy"), err)
		}
	}
	tokens, err := readTokens(gc.Tokens)
	if err != nil {
		return fmt.Errorf("%s: %w", l.Sources.Of("gateway.tokens"), err)
	}
	hosts := gc.Hosts
	if len(hosts) == 0 {
		h, _, _ := net.SplitHostPort(gc.Listen)
		hosts = []string{"localhost", "127.0.0.1", "::1", "[::1]", h}
	}
	srv := gateway.Server{Key: "http:" + up.String(), Name: up.String(), Command: up.String()}
	h := gateway.NewHTTP(gateway.HTTPOptions{
		Options: gateway.Options{Policy: set, MaxMessage: int(cfg.MaxMessage),
			Server: func() (gateway.Server, bool) { return srv, true },
			Decide: func(d gateway.Decision) {
				audit(d)
				if d.Verdict != "allowed" {
					log.Info("gateway", "verdict", d.Verdict, "method", d.Method, "tool", d.Tool, "policy", d.Policy, "principal", d.Principal, "reason", d.Reason)
				}
			}},
		Upstream: up, Hosts: hosts, Origins: gc.Origins, Tokens: tokens,
	})
	ln, err := net.Listen("tcp", gc.Listen)
	if err != nil {
		return fmt.Errorf("%s: listening on %s: %w", l.Sources.Of("gateway.listen"), gc.Listen, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	log.Info("gateway", "listen", ln.Addr().String(), "upstream", up.String(), "policy", set.Source, "policy_version", set.Version,
		"authenticated", len(tokens) > 0, "origins", gc.Origins)
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// readTokens reads TOKEN PRINCIPAL lines (# comments).
func readTokens(file string) (map[string]string, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("reading the tokens: %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		tok, who, ok := strings.Cut(l, " ")
		if !ok || strings.TrimSpace(who) == "" || len(tok) < 16 {
			return nil, fmt.Errorf("%s:%d: a line is TOKEN PRINCIPAL, the token at least 16 characters", file, n)
		}
		out[tok] = strings.TrimSpace(who)
	}
	return out, sc.Err()
}
