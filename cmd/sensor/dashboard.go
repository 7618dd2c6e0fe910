package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/control"
	"github.com/mcpsec/sensor/pkg/correlate"
	"github.com/mcpsec/sensor/pkg/dashboard"
	"github.com/mcpsec/sensor/pkg/decode"
	"github.com/mcpsec/sensor/pkg/pipeline"
)

// startDashboard serves the dashboard of the configuration's dashboard
// section; a port already taken is said and skipped (the daemon runs on).
func startDashboard(ctx context.Context, cfg config.Config, p *pipeline.Pipeline, h control.Handlers, log hclog.Logger) (*dashboard.Dashboard, error) {
	tf := cfg.Dashboard.TokenFile
	if tf == "" {
		tf = filepath.Join(p.StateDir(), "dashboard.token")
	}
	af := cfg.Dashboard.ActTokenFile
	if af == "" {
		af = filepath.Join(p.StateDir(), "dashboard-act.token")
	}
	view, err := loadToken(tf, "dashboard.token_file")
	if err != nil {
		return nil, err
	}
	act, err := loadToken(af, "dashboard.act_token_file")
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(cfg.Dashboard.Listen)
	d, err := dashboard.New(dashboard.Options{Token: view, ActToken: act, Hosts: []string{host}, Ask: dispatch(h)})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Dashboard.Listen)
	if err != nil {
		log.Warn("no dashboard: its address is not free (dashboard.listen)", "addr", cfg.Dashboard.Listen, "error", err)
		return nil, nil
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Warn("the dashboard listens beyond this host: anyone who can reach it and holds a token sees every alert; put TLS in front", "addr", ln.Addr().String())
	}
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("dashboard", "url", "http://"+ln.Addr().String()+"/#token="+view, "act_token_file", af)
	return d, nil
}

// loadToken reads a token file, or makes one (0600) with a random token.
func loadToken(path, key string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 16 {
			return "", fmt.Errorf("%s %s: the token is %d characters; use at least 16", key, path, len(t))
		}
		return t, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	t := hex.EncodeToString(raw)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	if err := os.WriteFile(path, []byte(t+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return t, nil
}

// dispatch answers the dashboard's questions with the control socket's
// handlers; what the page does is audited as the dashboard's.
func dispatch(h control.Handlers) dashboard.Ask {
	return func(cmd string, args json.RawMessage, by string) (any, error) {
		req := control.Request{Cmd: cmd, Args: args}
		switch cmd {
		case "status":
			return h.Status(), nil
		case "servers":
			return h.Servers(), nil
		case "contain", "release", "kill":
			var a struct {
				PID    int    `json:"pid"`
				Cgroup string `json:"cgroup"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(args, &a); err != nil {
				return nil, fmt.Errorf("%s: %w", cmd, err)
			}
			if strings.TrimSpace(a.Reason) == "" {
				return nil, errors.New("a reason is required: it goes to the audit trail")
			}
			if a.Cgroup != "" || a.PID <= 0 {
				return nil, errors.New("name the server by its pid")
			}
			req.PID, req.Reason, req.ServersOnly = a.PID, by+": "+a.Reason, true
			switch cmd {
			case "contain":
				return h.Contain(req, 0)
			case "release":
				return h.Release(req, 0)
			}
		}
		if fn := h.More[cmd]; fn != nil {
			return fn(req, 0)
		}
		return nil, fmt.Errorf("unknown command %q", cmd)
	}
}

// dashboardSubscriber feeds the page: every server's messages and effects
// into its timeline, and alerts live.
func dashboardSubscriber(d *dashboard.Dashboard) pipeline.Subscriber {
	tl := d.Timeline()
	return pipeline.Subscriber{Name: "dashboard", Want: func(it pipeline.Item) bool { return it.Event != nil },
		Handle: func(items []pipeline.Item) error {
			for _, it := range items {
				switch e := it.Event.(type) {
				case *correlate.Alert:
					d.Alert(e.Server, e)
				case *decode.Effect:
					if b, err := json.Marshal(e); err == nil {
						tl.Add(e.Server, b)
					}
				case *decode.Message:
					if b, err := json.Marshal(e); err == nil {
						tl.Add(e.Server, b)
					}
				}
			}
			return nil
		}}
}
