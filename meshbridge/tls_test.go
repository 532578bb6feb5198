package meshbridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testPKI struct {
	caPEM                 []byte
	serverCert            tls.Certificate
	clientCertPEM, keyPEM []byte
	caPool                *x509.CertPool
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := newKey()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test NHS Root CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		key := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	keyPEM := func(k *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pemOf("PRIVATE KEY", der)
	}
	srvDER, srvKey := issue(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	srvCert, err := tls.X509KeyPair(pemOf("CERTIFICATE", srvDER), keyPEM(srvKey))
	if err != nil {
		t.Fatal(err)
	}
	cliDER, cliKey := issue(3, "SERVER001.X26.api.mesh-client.nhs.uk", x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &testPKI{caPEM: pemOf("CERTIFICATE", caDER), serverCert: srvCert,
		clientCertPEM: pemOf("CERTIFICATE", cliDER), keyPEM: keyPEM(cliKey), caPool: pool}
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// connectProxy is a minimal HTTP CONNECT proxy that tunnels bytes blindly.
type connectProxy struct {
	connects atomic.Int64
	wg       sync.WaitGroup
}

func (p *connectProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.connects.Add(1)
	upstream, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = upstream.Close()
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	_, _ = client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(upstream, buf)
		_ = upstream.Close()
	}()
	go func() {
		defer p.wg.Done()
		_, _ = io.Copy(client, upstream)
		_ = client.Close()
	}()
}

func TestMutualTLSThroughConnectProxy(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	certPath := writeFile(t, dir, "client.pem", pki.clientCertPEM)
	keyPath := writeFile(t, dir, "client.key", pki.keyPEM)
	caPath := writeFile(t, dir, "ca.pem", pki.caPEM)

	var seenCN atomic.Value
	mesh := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		seenCN.Store(r.TLS.PeerCertificates[0].Subject.CommonName)
		w.WriteHeader(http.StatusOK)
	}))
	mesh.TLS = &tls.Config{Certificates: []tls.Certificate{pki.serverCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.caPool, MinVersion: tls.VersionTLS12}
	mesh.StartTLS()
	defer mesh.Close()

	proxy := &connectProxy{}
	proxySrv := httptest.NewServer(proxy)
	defer proxySrv.Close()

	tlsCfg, err := LoadTLSConfig(certPath, keyPath, caPath)
	if err != nil {
		t.Fatalf("LoadTLSConfig: %v", err)
	}
	if tlsCfg.MinVersion != tls.VersionTLS12 || len(tlsCfg.Certificates) != 1 || tlsCfg.RootCAs == nil {
		t.Fatalf("tls config %+v", tlsCfg)
	}
	newClient := func(cfg *tls.Config) *Client {
		c, err := New(Config{BaseURL: mesh.URL, MailboxID: testMailbox, Password: testPassword, SharedKey: testSharedKey,
			TLS: cfg, ProxyURL: proxySrv.URL, Retry: RetryPolicy{Attempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := newClient(tlsCfg).Handshake(context.Background()); err != nil {
		t.Fatalf("Handshake through proxy: %v", err)
	}
	if proxy.connects.Load() == 0 {
		t.Fatal("request did not go through the CONNECT proxy")
	}
	if cn, _ := seenCN.Load().(string); cn != "SERVER001.X26.api.mesh-client.nhs.uk" {
		t.Fatalf("server saw client CN %q", cn)
	}

	// Without the client certificate the MESH side refuses the session.
	noCert, err := LoadTLSConfig("", "", caPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := newClient(noCert).Handshake(context.Background()); err == nil {
		t.Fatal("handshake without client certificate succeeded")
	}
	// And with system roots only, the test CA is not trusted.
	sysRoots, err := LoadTLSConfig(certPath, keyPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := newClient(sysRoots).Handshake(context.Background()); err == nil {
		t.Fatal("untrusted server certificate accepted")
	}
}

func TestLoadTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	certPath := writeFile(t, dir, "client.pem", pki.clientCertPEM)
	keyPath := writeFile(t, dir, "client.key", pki.keyPEM)
	notPEM := writeFile(t, dir, "junk.pem", []byte("not a certificate"))
	tests := []struct {
		name          string
		cert, key, ca string
	}{
		{"cert without key", certPath, "", ""},
		{"key without cert", "", keyPath, ""},
		{"missing cert file", filepath.Join(dir, "nope.pem"), keyPath, ""},
		{"key does not match", certPath, notPEM, ""},
		{"missing CA file", certPath, keyPath, filepath.Join(dir, "nope-ca.pem")},
		{"CA without PEM", certPath, keyPath, notPEM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := LoadTLSConfig(tc.cert, tc.key, tc.ca); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := Config{BaseURL: "https://msg.intspineservices.nhs.uk", MailboxID: "x26abc1", Password: "p", SharedKey: "k"}
	c, err := New(base)
	if err != nil || c.MailboxID() != "X26ABC1" {
		t.Fatalf("New: %v", err)
	}
	for name, mut := range map[string]func(*Config){
		"no base":        func(c *Config) { c.BaseURL = "" },
		"relative base":  func(c *Config) { c.BaseURL = "/mesh" },
		"ftp base":       func(c *Config) { c.BaseURL = "ftp://x" },
		"no mailbox":     func(c *Config) { c.MailboxID = "" },
		"slash mailbox":  func(c *Config) { c.MailboxID = "a/b" },
		"colon mailbox":  func(c *Config) { c.MailboxID = "a:b" },
		"no password":    func(c *Config) { c.Password = "" },
		"no shared key":  func(c *Config) { c.SharedKey = "" },
		"bad proxy":      func(c *Config) { c.ProxyURL = "socks5://x" },
		"negative chunk": func(c *Config) { c.ChunkSize = -1 },
		"huge chunk":     func(c *Config) { c.ChunkSize = MaxChunkSize + 1 },
	} {
		cfg := base
		mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
