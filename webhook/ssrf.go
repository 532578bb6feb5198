package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// ErrTargetRefused marks a webhook URL the SSRF guard will not call. Such a
// delivery fails at once: retrying cannot make the address acceptable.
var ErrTargetRefused = errors.New("webhook target refused")

// Resolver resolves host names; *net.Resolver satisfies it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// blockedPrefixes are address ranges a webhook may not reach unless the
// subscription allows private targets: anything that is not the public
// Internet (read-only table).
var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network", includes unspecified
	netip.MustParsePrefix("10.0.0.0/8"),      // RFC 1918
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("127.0.0.0/8"),     // loopback
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local, cloud metadata 169.254.169.254
	netip.MustParsePrefix("172.16.0.0/12"),   // RFC 1918
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.168.0.0/16"),  // RFC 1918
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("224.0.0.0/4"),     // multicast
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("::/96"),           // unspecified, loopback and IPv4-compatible (::a.b.c.d embeds any IPv4 address)
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo: embeds an (obfuscated) IPv4 address
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4 (deprecated): embeds any IPv4 address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: could embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("fc00::/7"),        // unique local
	netip.MustParsePrefix("fe80::/10"),       // link-local
	netip.MustParsePrefix("fec0::/10"),       // deprecated site-local
	netip.MustParsePrefix("ff00::/8"),        // multicast
}

// checkIP refuses addresses outside the public Internet.
func checkIP(ip netip.Addr) error {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrTargetRefused)
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: address %s is not public (%s)", ErrTargetRefused, ip, p)
		}
	}
	return nil
}

// CheckTarget validates a webhook URL before an attempt: https (http only
// when allowPrivate), no credentials in the URL, and, unless allowPrivate,
// every address the host resolves to must be public. A refused target is
// reported with ErrTargetRefused; a resolution failure is returned as is
// (it may be transient). resolver may be nil for net.DefaultResolver.
func CheckTarget(ctx context.Context, rawURL string, allowPrivate bool, resolver Resolver) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: URL does not parse", ErrTargetRefused)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowPrivate:
	default:
		return fmt.Errorf("%w: scheme %q not allowed (https required)", ErrTargetRefused, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in URL", ErrTargetRefused)
	}
	host := u.Hostname()
	if host == "" {
		return fmt.Errorf("%w: no host", ErrTargetRefused)
	}
	if allowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkIP(ip)
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("webhook.CheckTarget: resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return fmt.Errorf("webhook.CheckTarget: resolve %s: no addresses", host)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			return fmt.Errorf("%w: %s resolved to an invalid address", ErrTargetRefused, host)
		}
		if err := checkIP(ip); err != nil {
			return fmt.Errorf("%s: %w", host, err)
		}
	}
	return nil
}

// dialGuard is a net.Dialer Control hook that checks the address actually
// being connected to, after resolution, so DNS rebinding between
// CheckTarget and the dial cannot reach a private address.
func dialGuard(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: dial address %q", ErrTargetRefused, address)
	}
	return checkIP(ap.Addr())
}

// newHTTPClient builds the delivery client. With guard set, every dial is
// checked by dialGuard. It never uses an environment proxy (the proxy would be
// what gets dialled, defeating the guard) and never follows redirects (a 3xx
// is a failed attempt, per Standard Webhooks).
func newHTTPClient(guard bool, maxConns int) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if guard {
		dialer.Control = dialGuard
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          4 * maxConns,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0, // the per-attempt context bounds the whole exchange
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
