package webhook

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// mapResolver resolves names from a table, like a hostile DNS would.
type mapResolver map[string][]string

func (m mapResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := m[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, len(ips))
	for i, s := range ips {
		out[i] = net.IPAddr{IP: net.ParseIP(s)}
	}
	return out, nil
}

func TestCheckTarget(t *testing.T) {
	resolver := mapResolver{
		"loopback.example":  {"127.0.0.1"},
		"metadata.example":  {"169.254.169.254"},
		"mixed.example":     {"93.184.216.34", "10.1.2.3"},
		"v6local.example":   {"fd00::1"},
		"public.example":    {"93.184.216.34"},
		"public6.example":   {"2606:2800:220:1:248:1893:25c8:1946"},
		"mapped.example":    {"::ffff:192.168.1.1"},
		"cgnat.example":     {"100.64.0.1"},
		"multicast.example": {"224.0.0.251"},
	}
	tests := []struct {
		name         string
		url          string
		allowPrivate bool
		wantRefused  bool
		wantErr      bool // any error
	}{
		{"loopback v4", "https://127.0.0.1/hook", false, true, true},
		{"loopback v4 other", "https://127.8.9.10/hook", false, true, true},
		{"RFC1918 10/8", "https://10.0.0.1/hook", false, true, true},
		{"RFC1918 172.16/12", "https://172.20.1.1/hook", false, true, true},
		{"RFC1918 192.168/16", "https://192.168.0.10/hook", false, true, true},
		{"cloud metadata", "https://169.254.169.254/latest/meta-data", false, true, true},
		{"loopback v6", "https://[::1]:8443/hook", false, true, true},
		{"unspecified v4", "https://0.0.0.0/hook", false, true, true},
		{"unspecified v6", "https://[::]/hook", false, true, true},
		{"link-local v6", "https://[fe80::1]/hook", false, true, true},
		{"unique local v6", "https://[fc00::5]/hook", false, true, true},
		{"v4-mapped v6 loopback", "https://[::ffff:127.0.0.1]/hook", false, true, true},
		{"v4-compatible v6 private", "https://[::10.0.0.1]/hook", false, true, true},
		{"6to4 of a private address", "https://[2002:a00:1::1]/hook", false, true, true},
		{"Teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", false, true, true},
		{"documentation v4", "https://203.0.113.7/hook", false, true, true},
		{"documentation v6", "https://[2001:db8::7]/hook", false, true, true},
		{"host resolving to loopback", "https://loopback.example/hook", false, true, true},
		{"host resolving to metadata", "https://metadata.example/hook", false, true, true},
		{"host with one private address", "https://mixed.example/hook", false, true, true},
		{"host resolving to ULA", "https://v6local.example/hook", false, true, true},
		{"host resolving to mapped private", "https://mapped.example/hook", false, true, true},
		{"host resolving to CGNAT", "https://cgnat.example/hook", false, true, true},
		{"host resolving to multicast", "https://multicast.example/hook", false, true, true},
		{"http refused", "http://public.example/hook", false, true, true},
		{"ftp refused even if private allowed", "ftp://127.0.0.1/hook", true, true, true},
		{"credentials in URL", "https://user:pw@public.example/hook", false, true, true},
		{"no host", "https:///hook", false, true, true},
		{"public v4 ok", "https://public.example/hook?x=1", false, false, false},
		{"public v6 ok", "https://public6.example/hook", false, false, false},
		{"public literal ok", "https://93.184.216.34/hook", false, false, false},
		{"private allowed", "http://127.0.0.1:8080/hook", true, false, false},
		{"unresolvable: error, not a refusal", "https://nowhere.example/hook", false, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTarget(context.Background(), tc.url, tc.allowPrivate, resolver)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckTarget(%q) = %v, want error %v", tc.url, err, tc.wantErr)
			}
			if got := errors.Is(err, ErrTargetRefused); got != tc.wantRefused {
				t.Fatalf("CheckTarget(%q) = %v, refused %v, want %v", tc.url, err, got, tc.wantRefused)
			}
		})
	}
}

// The dial-time guard checks the address actually connected to, so a name
// that passed CheckTarget and then re-resolves to loopback (DNS rebinding)
// still cannot be reached.
func TestGuardedClientRefusesPrivateAtDial(t *testing.T) {
	var hit atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit.Store(true) }))
	defer srv.Close()

	strict := newHTTPClient(true, 1)
	_, err := strict.Get(srv.URL)
	if !errors.Is(err, ErrTargetRefused) {
		t.Fatalf("guarded client to %s: err = %v, want ErrTargetRefused", srv.URL, err)
	}
	// "localhost" resolves inside the dialer, after any pre-check.
	_, err = strict.Get(strings.Replace(srv.URL, "127.0.0.1", "localhost", 1))
	if !errors.Is(err, ErrTargetRefused) {
		t.Fatalf("guarded client to localhost: err = %v, want ErrTargetRefused", err)
	}
	if hit.Load() {
		t.Fatal("the guarded client reached the loopback server")
	}
	resp, err := newHTTPClient(false, 1).Get(srv.URL)
	if err != nil {
		t.Fatalf("unguarded client: %v", err)
	}
	resp.Body.Close()
	if !hit.Load() {
		t.Fatal("unguarded client did not reach the server")
	}
}
