package sink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// pki writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, as PEM files in dir.
func pki(t *testing.T, dir string) (ca, srvCert, srvKey, cliCert, cliKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpsec test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(k)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	srvCert, srvKey = leaf("server", 2, x509.ExtKeyUsageServerAuth)
	cliCert, cliKey = leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

func startServer(t *testing.T, o *server.Options) *server.Server {
	t.Helper()
	o.Host, o.Port, o.JetStream, o.StoreDir, o.NoLog, o.NoSigs = "127.0.0.1", freePort(t), true, t.TempDir(), os.Getenv("NATSLOG") == "", true
	ns, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	if !o.NoLog {
		ns.ConfigureLogger()
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// publishOne sends one alert through a sink made with cfg and reports
// whether JetStream acknowledged it within wait, and the sink's last error.
func publishOne(t *testing.T, cfg NATSConfig, wait time.Duration) (bool, string) {
	t.Helper()
	cfg.Host, cfg.Spool = "h1", filepath.Join(t.TempDir(), "spool.db")
	s, err := NewNATS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Publish("high", "r", map[string]int{"n": 0}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	acked := s.Flush(wait)
	st := s.Stats()
	t.Logf("%s: acknowledged %v after %v; last error %q", cfg.URL, acked, time.Since(start).Round(time.Millisecond), st.LastError)
	if acked && (st.Published != 1 || st.Pending != 0) {
		t.Fatalf("flushed but %+v", st)
	}
	return acked, st.LastError
}

// Alerts reach a server that demands TLS with client certificates and an
// nkey; without the client certificate, with another nkey or without the
// CA that signed the server's certificate they wait in the spool and the
// stats say why.
func TestNATSTLSAndNKey(t *testing.T) {
	ca, srvCert, srvKey, cliCert, cliKey := pki(t, t.TempDir())
	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: srvCert, KeyFile: srvKey, CaFile: ca, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	seed := func(kp nkeys.KeyPair) string {
		sd, _ := kp.Seed()
		p := filepath.Join(t.TempDir(), "user.nk")
		if err := os.WriteFile(p, sd, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ns := startServer(t, &server.Options{TLSConfig: tc, TLSVerify: true, TLSTimeout: 2, Nkeys: []*server.NkeyUser{{Nkey: pub}}})
	url := "tls://" + ns.Addr().String()
	good := NATSConfig{URL: url, CAFile: ca, CertFile: cliCert, KeyFile: cliKey, NKeySeed: seed(user)}
	if ok, last := publishOne(t, good, 10*time.Second); !ok {
		t.Fatalf("TLS with a client certificate and the nkey: not acknowledged (%s)", last)
	}
	noCert := good
	noCert.CertFile, noCert.KeyFile = "", ""
	if ok, last := publishOne(t, noCert, 2*time.Second); ok || !strings.Contains(last, "tls") {
		t.Fatalf("without a client certificate: acknowledged %v, last error %q", ok, last)
	}
	other, _ := nkeys.CreateUser()
	wrong := good
	wrong.NKeySeed = seed(other)
	if ok, last := publishOne(t, wrong, 2*time.Second); ok || !strings.Contains(strings.ToLower(last), "authorization") {
		t.Fatalf("another nkey: acknowledged %v, last error %q", ok, last)
	}
	// without our CA (nats.go upgrades to TLS when the server asks), the
	// server's certificate is not trusted
	noCA := NATSConfig{URL: "nats://" + ns.Addr().String(), NKeySeed: seed(user)}
	if ok, last := publishOne(t, noCA, 2*time.Second); ok || !strings.Contains(last, "x509") {
		t.Fatalf("without the CA: acknowledged %v, last error %q", ok, last)
	}
}

// Alerts reach a server in operator mode (decentralized JWT auth) with a
// user's credentials file.
func TestNATSCreds(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	sys, _ := nkeys.CreateAccount() // JetStream in operator mode needs a system account
	sysPub, _ := sys.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	sysJWT, err := jwt.NewAccountClaims(sysPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	opClaims, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := nkeys.CreateAccount()
	acctPub, _ := acct.PublicKey()
	ac := jwt.NewAccountClaims(acctPub)
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	acctJWT, err := ac.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(acctPub, acctJWT); err != nil {
		t.Fatal(err)
	}
	if err := resolver.Store(sysPub, sysJWT); err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	userJWT, err := jwt.NewUserClaims(userPub).Encode(acct)
	if err != nil {
		t.Fatal(err)
	}
	userSeed, _ := user.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, userSeed)
	if err != nil {
		t.Fatal(err)
	}
	credsFile := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(credsFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := startServer(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{opClaims}, AccountResolver: resolver, SystemAccount: sysPub})
	url := "nats://" + ns.Addr().String()
	if ok, last := publishOne(t, NATSConfig{URL: url, Creds: credsFile}, 10*time.Second); !ok {
		t.Fatalf("with the user's credentials: not acknowledged (%s)", last)
	}
	if ok, last := publishOne(t, NATSConfig{URL: url}, 2*time.Second); ok || last == "" {
		t.Fatalf("without credentials: acknowledged %v, last error %q", ok, last)
	}
}
