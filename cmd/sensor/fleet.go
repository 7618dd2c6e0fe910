package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpsec/sensor/pkg/config"
	"github.com/mcpsec/sensor/pkg/fleet"
	"github.com/mcpsec/sensor/pkg/sink"
)

func newFleetCmd() *cobra.Command {
	var cfgPath, output string
	var last int
	cmd := &cobra.Command{Use: "fleet", Short: "The whole fleet, from NATS: hosts, servers, indicators, alerts",
		Long: `fleet answers from the NATS JetStream the daemons share (fleet.enabled in their
configuration): each host's inventory and heartbeat, the servers they follow,
the indicators they reported (who said it, how many hosts, withdrawn or not),
and the alerts in the MCPSEC stream. It reads the NATS settings of the
daemon's configuration (--config).`}
	cmd.PersistentFlags().StringVar(&cfgPath, "config", config.DefaultPath, "the daemon's configuration (its nats section)")
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "text or json")
	conn := func(c *cobra.Command) (*nats.Conn, config.Config, error) {
		l, err := config.Bind(config.Daemon, pflag.NewFlagSet("fleet", pflag.ContinueOnError)).Load(cfgPath, c.Flags().Changed("config"), os.LookupEnv)
		if err != nil {
			return nil, l.Config, err
		}
		n := l.Config.NATS
		if n.URL == "" {
			return nil, l.Config, fmt.Errorf("no nats.url in %s: the fleet lives on NATS", cfgPath)
		}
		nc, err := sink.Dial(sink.NATSConfig{URL: n.URL, Creds: n.Creds, NKeySeed: n.NKey, CAFile: n.CA, CertFile: n.Cert, KeyFile: n.Key})
		return nc, l.Config, err
	}
	emit := func(w io.Writer, v any, text func()) error {
		if output == "json" {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text()
		return nil
	}
	// withNATS connects with the daemon's settings and runs fn with a
	// deadline
	withNATS := func(c *cobra.Command, fn func(ctx context.Context, nc *nats.Conn, cfg config.Config) error) error {
		nc, cfg, err := conn(c)
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return fn(ctx, nc, cfg)
	}
	inventories := func(c *cobra.Command) (invs []fleet.Inventory, err error) {
		err = withNATS(c, func(ctx context.Context, nc *nats.Conn, _ config.Config) (err error) {
			invs, err = fleet.Inventories(ctx, nc)
			return err
		})
		return invs, err
	}
	status := &cobra.Command{Use: "status", Short: "Each host: last heartbeat, servers, alerts, indicators in force", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			invs, err := inventories(c)
			if err != nil {
				return err
			}
			sort.Slice(invs, func(i, j int) bool { return invs[i].Host < invs[j].Host })
			return emit(c.OutOrStdout(), invs, func() {
				w := c.OutOrStdout()
				fmt.Fprintf(w, "%d host(s)\n", len(invs))
				for _, in := range invs {
					state := "alive"
					if time.Since(in.Time) > 30*time.Second {
						state = "SILENT"
					}
					fmt.Fprintf(w, "  %-20s %s (beat %s ago), %d servers, %d alerts, %d indicators in force, key %s\n", in.Host, state,
						time.Since(in.Time).Round(time.Second), len(in.Servers), in.Alerts, in.Indicators, in.Key)
				}
			})
		}}
	servers := &cobra.Command{Use: "servers", Short: "The servers every host follows, by identity", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			invs, err := inventories(c)
			if err != nil {
				return err
			}
			by := map[string][]string{}
			for _, in := range invs {
				for _, s := range in.Servers {
					by[s.Identity] = append(by[s.Identity], in.Host)
				}
			}
			return emit(c.OutOrStdout(), by, func() {
				keys := make([]string, 0, len(by))
				for k := range by {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					fmt.Fprintf(c.OutOrStdout(), "  %-60s on %s\n", k, strings.Join(by[k], ", "))
				}
			})
		}}
	indicators := &cobra.Command{Use: "indicators", Short: "The indicators the fleet shares: who reported them, withdrawn or not", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var all []fleet.Indicator
			err := withNATS(c, func(ctx context.Context, nc *nats.Conn, _ config.Config) (err error) {
				all, err = fleet.All(ctx, nc)
				return err
			})
			if err != nil {
				return err
			}
			sort.Slice(all, func(i, j int) bool { return all[i].FirstSeen.Before(all[j].FirstSeen) })
			return emit(c.OutOrStdout(), all, func() {
				for _, in := range all {
					hosts := make([]string, 0, len(in.Reports))
					for _, r := range in.Reports {
						hosts = append(hosts, r.Host)
					}
					state := ""
					if in.Withdrawn != nil {
						state = " WITHDRAWN by " + in.Withdrawn.Host + ": " + in.Withdrawn.Reason
					}
					fmt.Fprintf(c.OutOrStdout(), "  %-12s %-45s %s (%s), first %s at %s, %d host(s): %s%s\n", in.Type, in.Value, in.Rule, in.Severity,
						in.FirstHost, in.FirstSeen.Local().Format("2006-01-02 15:04:05"), len(in.Reports), strings.Join(hosts, ", "), state)
				}
			})
		}}
	alerts := &cobra.Command{Use: "alerts [--last N]", Short: "The fleet's last alerts, from the MCPSEC stream", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var out []json.RawMessage
			err := withNATS(c, func(ctx context.Context, nc *nats.Conn, cfg config.Config) error {
				js, _ := jetstream.New(nc)
				st, err := js.Stream(ctx, "MCPSEC")
				if err != nil {
					return fmt.Errorf("no MCPSEC stream on %s: %w", cfg.NATS.URL, err)
				}
				info, err := st.Info(ctx)
				if err != nil {
					return err
				}
				for seq := info.State.LastSeq; seq >= info.State.FirstSeq && seq > 0 && len(out) < last; seq-- {
					m, err := st.GetMsg(ctx, seq)
					if err != nil || !strings.HasPrefix(m.Subject, "mcpsec.alert.") {
						continue
					}
					out = append(out, m.Data)
				}
				return nil
			})
			if err != nil {
				return err
			}
			for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
				out[i], out[j] = out[j], out[i]
			}
			for _, b := range out {
				if output == "json" {
					fmt.Fprintln(c.OutOrStdout(), string(b))
					continue
				}
				var a struct {
					Time     time.Time `json:"ts"`
					Severity string    `json:"severity"`
					Rule     string    `json:"rule"`
					Output   string    `json:"output"`
				}
				_ = json.Unmarshal(b, &a)
				fmt.Fprintf(c.OutOrStdout(), "%s %-8s %-30s %s\n", a.Time.Local().Format("2006-01-02 15:04:05"), strings.ToUpper(a.Severity), a.Rule, a.Output)
			}
			return nil
		}}
	alerts.Flags().IntVar(&last, "last", 50, "how many alerts")
	key := &cobra.Command{Use: "key", Short: "This host's public nkey (what other hosts list in fleet.trust)", Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			l, err := config.Bind(config.Daemon, pflag.NewFlagSet("fleet", pflag.ContinueOnError)).Load(cfgPath, c.Flags().Changed("config"), os.LookupEnv)
			if err != nil {
				return err
			}
			path := l.Config.Fleet.KeyFile
			if path == "" {
				path = filepath.Join(l.Config.StateDir, "fleet.nk")
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("no fleet key at %s yet (the daemon makes it when it joins the fleet): %w", path, err)
			}
			kp, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(b))))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			pub, _ := kp.PublicKey()
			fmt.Fprintln(c.OutOrStdout(), pub)
			return nil
		}}
	cmd.AddCommand(status, servers, indicators, alerts, key)
	return cmd
}
