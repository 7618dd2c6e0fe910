// Package sink sends alerts to a SOC: NATS JetStream with a durable local
// spool, so nothing is lost and nothing is duplicated across an outage or
// a sensor restart.
package sink

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the version of the alert messages' JSON; it travels in
// the Mcpsec-Schema header.
const SchemaVersion = "1"

// NATSConfig says where and how alerts are published.
type NATSConfig struct {
	URL    string
	Host   string // the host name in subjects (default: os.Hostname)
	Prefix string // subject prefix (default "mcpsec")
	Stream string // JetStream stream (default "MCPSEC"), created if missing
	// Duplicates is the stream's de-duplication window: redeliveries of one
	// alert inside it are dropped by the server. Size it for the longest
	// outage the spool must bridge (default 24h).
	Duplicates time.Duration
	Creds      string // credentials file (JWT + nkey)
	NKeySeed   string // nkey seed file
	CAFile     string // TLS: trust these CAs
	CertFile   string // TLS: client certificate
	KeyFile    string
	// Spool is the bbolt file alerts wait in until JetStream acknowledged
	// them.
	Spool string
	Log   hclog.Logger
	// Replicas of the stream it creates (3 on a three-node cluster;
	// default 1).
	Replicas int
}

// NATSStats counts what the sink did.
type NATSStats struct {
	Spooled   uint64 `json:"spooled"`
	Published uint64 `json:"published"` // acknowledged by JetStream
	Pending   int    `json:"pending"`   // in the spool now
	Retries   uint64 `json:"retries"`
	Connected bool   `json:"connected"`
	Events    uint64 `json:"events,omitempty"`        // events published (when asked for)
	OCSF      uint64 `json:"ocsf,omitempty"`          // OCSF findings published (when asked for)
	OCSFErrs  uint64 `json:"ocsf_unsent,omitempty"`   // OCSF findings that could not be
	EventErrs uint64 `json:"events_unsent,omitempty"` // events that could not be
	LastError string `json:"last_error,omitempty"`
}

// NATS publishes alerts to JetStream in order, each exactly once: an alert
// is written to the spool first, published with a message id (JetStream
// drops a redelivery inside its duplicate window), and deleted from the
// spool only when acknowledged. When NATS is away alerts wait in the spool
// and go out, in order, when it is back; a restarted sensor sends what its
// predecessor left.
type NATS struct {
	cfg    NATSConfig
	nc     *nats.Conn
	js     jetstream.JetStream
	db     *bolt.DB
	wake   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed sync.Once
	ctx    context.Context // ends at Close: no publish outlives the sink
	// recheck: (re)connected, the stream is to be checked again
	recheck atomic.Bool
	cancel  context.CancelFunc
	st      struct {
		spooled, published, retries atomic.Uint64
		events, eventErrs           atomic.Uint64
		ocsf, ocsfErrs              atomic.Uint64
		connected                   atomic.Bool
		lastErr, connErr            atomic.Value
	}
}

var bucket = []byte("alerts")

// spooled is one alert waiting for its ack.
type spooled struct {
	ID      string          `json:"id"`
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// NewNATS opens the spool and connects; the connection keeps retrying in
// the background, so an unreachable server at start is not an error.
func NewNATS(cfg NATSConfig) (*NATS, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "mcpsec"
	}
	if cfg.Stream == "" {
		cfg.Stream = "MCPSEC"
	}
	if cfg.Duplicates == 0 {
		cfg.Duplicates = 24 * time.Hour
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	cfg.Host = token(cfg.Host)
	if cfg.Log == nil {
		cfg.Log = hclog.NewNullLogger()
	}
	if cfg.Spool == "" {
		return nil, errors.New("nats: a spool file is needed (alerts wait there while NATS is away)")
	}
	db, err := bolt.Open(cfg.Spool, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening the alert spool %s: %w", cfg.Spool, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists(bucket); return err }); err != nil {
		db.Close()
		return nil, err
	}
	opts := []nats.Option{
		nats.Name("mcp-sensor " + cfg.Host), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		// credentials refused twice would otherwise end the connection for
		// good; the server's accounts may be fixed while the sensor runs
		nats.IgnoreAuthErrorAbort(),
	}
	auth, err := authOptions(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	opts = append(opts, auth...)
	s := &NATS{cfg: cfg, db: db, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	opts = append(opts,
		nats.ConnectHandler(func(*nats.Conn) { s.connected() }),
		nats.ReconnectHandler(func(*nats.Conn) { s.connected() }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { s.st.connected.Store(false) }),
		// a refused TLS handshake or credentials: in the stats and the
		// log, not only in a debug line
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { s.connFailed(err) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			// on a working connection (a permission refused, a slow consumer)
			s.st.lastErr.Store(err.Error())
			s.cfg.Log.Warn("NATS error", "error", err)
		}),
	)
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("nats %s: %w", cfg.URL, err)
	}
	s.nc = nc
	s.st.connected.Store(nc.IsConnected())
	if s.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		db.Close()
		return nil, err
	}
	go s.run()
	s.kick() // what a predecessor left
	return s, nil
}

func tlsConfig(cfg NATSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		c, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{c}
	}
	return tc, nil
}

var unsafeToken = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// token makes s one NATS subject token.
func token(s string) string {
	s = unsafeToken.ReplaceAllString(s, "_")
	if s == "" {
		return "_"
	}
	return s
}

// Subject is where an alert of a severity and rule goes.
func (s *NATS) Subject(severity, rule string) string {
	return strings.Join([]string{s.cfg.Prefix, "alert", s.cfg.Host, token(severity), token(rule)}, ".")
}

// Publish spools an alert (synced to disk) and returns; it goes out in
// order as soon as JetStream takes it.
func (s *NATS) Publish(severity, rule string, alert any) error {
	return s.PublishBatch([]Pending{{severity, rule, alert}})
}

// Pending is an alert to publish.
type Pending struct {
	Severity, Rule string
	Alert          any
}

// PublishBatch spools alerts in order in one transaction (one sync for
// all of them), then returns; they go out in that order.
func (s *NATS) PublishBatch(alerts []Pending) error {
	if len(alerts) == 0 {
		return nil
	}
	recs := make([][]byte, len(alerts))
	for i, a := range alerts {
		data, err := json.Marshal(a.Alert)
		if err != nil {
			return fmt.Errorf("encoding an alert: %w", err)
		}
		var idb [16]byte
		_, _ = rand.Read(idb[:])
		recs[i], _ = json.Marshal(spooled{ID: hex.EncodeToString(idb[:]), Subject: s.Subject(a.Severity, a.Rule), Data: data})
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		for _, rec := range recs {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			var k [8]byte
			binary.BigEndian.PutUint64(k[:], seq)
			if err := b.Put(k[:], rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("spooling alerts: %w", err)
	}
	s.st.spooled.Add(uint64(len(alerts)))
	s.kick()
	return nil
}

func (s *NATS) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// run sends the spool in order, one alert at a time, each acknowledged
// before the next; a failure waits and retries the same alert.
func (s *NATS) run() {
	defer close(s.done)
	streamReady := false
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-time.After(time.Second):
		}
		for s.st.connected.Load() { // a (re)connection wakes this loop
			if s.recheck.Swap(false) {
				streamReady = false
			}
			if !streamReady {
				if err := s.ensureStream(); err != nil {
					s.fail(err)
					break
				}
				streamReady = true
			}
			batch := s.oldest(sendBatch)
			if len(batch) == 0 {
				break
			}
			sent := 0
			var err error
			for _, it := range batch {
				if err = s.send(it.rec); err != nil {
					break
				}
				sent++
			}
			if sent > 0 {
				// one transaction for the acknowledged ones: a crash before
				// it sends them again, and JetStream drops the repeats
				_ = s.db.Update(func(tx *bolt.Tx) error {
					b := tx.Bucket(bucket)
					for _, it := range batch[:sent] {
						if err := b.Delete(it.key); err != nil {
							return err
						}
					}
					return nil
				})
				s.st.published.Add(uint64(sent))
				backoff = 100 * time.Millisecond
			}
			if err != nil {
				s.st.retries.Add(1)
				s.fail(err)
				if errors.Is(err, jetstream.ErrNoStreamResponse) {
					streamReady = false // the stream is gone: made again
				}
				select {
				case <-s.stop:
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 2*time.Second)
				continue
			}
			select {
			case <-s.stop:
				return
			default:
			}
		}
	}
}

// connFailed records why the connection to NATS failed, logging each
// new reason once.
// connected: the reason of an earlier failure is over, and the stream is
// checked again (a server back with a fresh store has none).
func (s *NATS) connected() {
	s.st.connErr.Store("")
	s.recheck.Store(true)
	s.st.connected.Store(true)
	s.kick()
}

func (s *NATS) connFailed(err error) {
	if err == nil {
		return
	}
	if prev, _ := s.st.connErr.Swap(err.Error()).(string); prev != err.Error() {
		s.cfg.Log.Warn("NATS refused or unreachable; alerts wait in the spool", "url", s.cfg.URL, "error", err)
	}
}

func (s *NATS) fail(err error) {
	s.st.lastErr.Store(err.Error())
	s.cfg.Log.Debug("alert not published yet; it stays in the spool", "error", err)
}

func (s *NATS) ensureStream() error {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	_, err := s.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: s.cfg.Stream, Subjects: []string{s.cfg.Prefix + ".>"}, Duplicates: s.cfg.Duplicates,
		Storage: jetstream.FileStorage, Replicas: max(1, s.cfg.Replicas),
	})
	if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		// a stream managed by the SOC may exist with other settings and
		// the sensor may not be allowed to change it: publishing will say
		// if it cannot be used
		if _, gerr := s.js.Stream(ctx, s.cfg.Stream); gerr == nil {
			return nil
		}
		return fmt.Errorf("JetStream stream %s: %w", s.cfg.Stream, err)
	}
	return nil
}

// sendBatch is how many spooled alerts are read, sent (one at a time, in
// order, each acknowledged before the next) and deleted together.
const sendBatch = 64

type spoolItem struct {
	key []byte
	rec spooled
}

// oldest returns up to n alerts from the head of the spool.
func (s *NATS) oldest(n int) []spoolItem {
	var out []spoolItem
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			var rec spooled
			_ = json.Unmarshal(v, &rec)
			out = append(out, spoolItem{key: append([]byte(nil), k...), rec: rec})
		}
		return nil
	})
	return out
}

func (s *NATS) send(rec spooled) error {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	msg := nats.NewMsg(rec.Subject)
	msg.Data = rec.Data
	msg.Header.Set("Mcpsec-Schema", SchemaVersion)
	_, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgID(rec.ID))
	return err
}

// Pending is the number of alerts waiting in the spool.
func (s *NATS) Pending() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil })
	return n
}

// Stats returns the counters.
func (s *NATS) Stats() NATSStats {
	st := NATSStats{Spooled: s.st.spooled.Load(), Published: s.st.published.Load(), Retries: s.st.retries.Load(),
		Connected: s.st.connected.Load(), Pending: s.Pending(), Events: s.st.events.Load(), EventErrs: s.st.eventErrs.Load(),
		OCSF: s.st.ocsf.Load(), OCSFErrs: s.st.ocsfErrs.Load()}
	if e, ok := s.st.lastErr.Load().(string); ok {
		st.LastError = e
	}
	if e, ok := s.st.connErr.Load().(string); ok && e != "" && !st.Connected {
		st.LastError = e // why there is no connection says more than the failed publish
	}
	return st
}

// Flush waits up to d for the spool to empty.
func (s *NATS) Flush(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s.Pending() == 0 {
			return true
		}
		s.kick()
		time.Sleep(20 * time.Millisecond)
	}
	return s.Pending() == 0
}

// Close stops sending (what is left stays in the spool for the next run).
func (s *NATS) Close() error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		s.cancel()
		<-s.done
		s.nc.Close()
		err = s.db.Close()
	})
	return err
}

// Heartbeat publishes the sensor's liveness on <prefix>.heartbeat.<host>
// (core NATS: a missed heartbeat is news in itself, not worth a spool).
func (s *NATS) Heartbeat(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.nc.Publish(s.cfg.Prefix+".heartbeat."+s.cfg.Host, data)
}

// Event publishes one event (an effect or a message) on
// <prefix>.event.<host>.<kind>: optional, for SOCs that want the whole
// stream. Core NATS, not spooled: events are many, and each one is also in
// the sensor's own output; what cannot be sent is counted.
func (s *NATS) Event(kind string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		err = s.nc.Publish(s.cfg.Prefix+".event."+s.cfg.Host+"."+token(kind), data)
	}
	if err != nil {
		s.st.eventErrs.Add(1)
		return
	}
	s.st.events.Add(1)
}

// authOptions are the connection's credentials and TLS.
func authOptions(cfg NATSConfig) ([]nats.Option, error) {
	var opts []nats.Option
	if cfg.Creds != "" {
		opts = append(opts, nats.UserCredentials(cfg.Creds))
	}
	if cfg.NKeySeed != "" {
		o, err := nats.NkeyOptionFromSeed(cfg.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("nats nkey: %w", err)
		}
		opts = append(opts, o)
	}
	if cfg.CAFile != "" || cfg.CertFile != "" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Secure(tc))
	}
	return opts, nil
}

// Dial connects once, with the sink's credentials (for commands that read
// from NATS, such as sensor fleet).
func Dial(cfg NATSConfig) (*nats.Conn, error) {
	opts, err := authOptions(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(cfg.URL, append(opts, nats.Name("sensor cli"), nats.Timeout(5*time.Second))...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", cfg.URL, err)
	}
	return nc, nil
}

// Conn is the connection (the fleet's buckets use it too).
func (s *NATS) Conn() *nats.Conn { return s.nc }

// OCSF publishes an OCSF finding on <prefix>.ocsf.<host>.<severity> (core
// NATS: the alert itself is in the stream, spooled); what cannot be sent
// is counted.
func (s *NATS) OCSF(severity string, finding []byte) {
	if err := s.nc.Publish(s.cfg.Prefix+".ocsf."+s.cfg.Host+"."+token(severity), finding); err != nil {
		s.st.ocsfErrs.Add(1)
		return
	}
	s.st.ocsf.Add(1)
}
