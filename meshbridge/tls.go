package meshbridge

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"
)

// LoadTLSConfig builds the mutual-TLS configuration MESH requires: the
// mailbox's client certificate and key, and the NHS CA bundle as the only
// trusted roots (empty caPEMPath = system roots). TLS 1.2 is the minimum
// (PYC's ssl context). Go verifies the server name against SANs only, which
// the internet MESH endpoints carry.
func LoadTLSConfig(certPEMPath, keyPEMPath, caPEMPath string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if certPEMPath != "" || keyPEMPath != "" {
		if certPEMPath == "" || keyPEMPath == "" {
			return nil, errors.New("meshbridge: client certificate and key must both be set")
		}
		pair, err := tls.LoadX509KeyPair(certPEMPath, keyPEMPath)
		if err != nil {
			return nil, fmt.Errorf("meshbridge: load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if caPEMPath != "" {
		pem, err := os.ReadFile(caPEMPath)
		if err != nil {
			return nil, fmt.Errorf("meshbridge: read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("meshbridge: CA bundle holds no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// newTransport returns a transport tuned for many small sends and a few large
// ones: keep-alive with a deep idle pool, big socket buffers, HTTP/1.1 (what
// MESH speaks), and no transparent gzip (the client handles Content-Encoding
// per chunk itself). The proxy and the TLS config live on the same transport,
// so the client certificate is presented on the TLS session tunnelled through
// CONNECT (PYC bug mesh-1507).
func newTransport(tlsCfg *tls.Config, proxyURL string) (*http.Transport, error) {
	proxy := http.ProxyFromEnvironment
	if proxyURL != "" {
		u, err := url.Parse(proxyURL)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errors.New("meshbridge: ProxyURL must be an http:// or https:// URL")
		}
		proxy = http.ProxyURL(u)
	}
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	} else {
		tlsCfg = tlsCfg.Clone()
		if tlsCfg.MinVersion < tls.VersionTLS12 {
			tlsCfg.MinVersion = tls.VersionTLS12
		}
	}
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   30 * time.Second,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		WriteBufferSize:       128 << 10, // a typical document goes out in one write
		ReadBufferSize:        64 << 10,
		ForceAttemptHTTP2:     false,
	}, nil
}
