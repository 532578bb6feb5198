// Package config loads the gateway's runtime configuration from environment
// variables into a typed, validated struct. The variable names are a public
// contract (README "Configuration").
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

// Bounds of MESH_CHUNK_SIZE (uncompressed bytes), the same as a registry
// mailbox's chunkSize.
const (
	// MinChunkSize: MESH wants every chunk but the last "greater than 5MB"
	// (the client and the sandbox do not enforce it; MESH may).
	MinChunkSize int64 = 5 << 20
	// MaxChunkSize is meshbridge.MaxChunkSize: MESH takes at most 100 MB
	// per request, and gzip makes incompressible data slightly larger.
	MaxChunkSize int64 = 99_000_000
)

// Config is every setting the gateway reads from the environment.
type Config struct {
	Port      int    `env:"PORT" envDefault:"8080"`
	AdminPort int    `env:"ADMIN_PORT" envDefault:"9090"`
	Host      string `env:"HOST" envDefault:""` // listen address; empty = all interfaces (127.0.0.1 in the embedded demo)

	// Single-mailbox MESH shorthand (GATEWAY_CONFIG can configure several).
	MeshURL             string `env:"MESH_URL"`
	MeshMailboxID       string `env:"MESH_MAILBOX_ID"`
	MeshMailboxPassword string `env:"MESH_MAILBOX_PASSWORD"`
	MeshSharedKey       string `env:"MESH_SHARED_KEY"`
	MeshClientCert      string `env:"MESH_CLIENT_CERT"`
	MeshClientKey       string `env:"MESH_CLIENT_KEY"`
	MeshCACert          string `env:"MESH_CA_CERT"`
	MeshChunkSize       int64  `env:"MESH_CHUNK_SIZE" envDefault:"10485760"` // 10 MiB uncompressed: above MESH's 5 MB minimum for non-final chunks, half the memory per send of the NHS serverless client's 20 MiB

	MeshCompressThreshold int64 `env:"MESH_COMPRESS_THRESHOLD" envDefault:"20971520"` // gzip messages at least this large (the NHS serverless client's default)

	MeshLookupCacheTTL time.Duration `env:"MESH_LOOKUP_CACHE_TTL" envDefault:"10m"` // keep endpoint lookup answers (odsCode → mailbox); 0 = off

	RedisURL string `env:"REDIS_URL"`

	GatewayConfig string `env:"GATEWAY_CONFIG"`   // path to the client/mailbox registry YAML
	Audience      string `env:"GATEWAY_AUDIENCE"` // JWT aud; overrides the registry file's audience
	PublicURL     string `env:"GATEWAY_PUBLIC_URL"`

	MaxBodyBytes     int64 `env:"MAX_BODY_BYTES" envDefault:"104857600"` // 100 MB
	RecommendedBytes int64 `env:"RECOMMENDED_DOCUMENT_BYTES" envDefault:"5242880"`

	RetentionTTL time.Duration `env:"RETENTION" envDefault:"720h"` // 30 days

	ClientRateLimit float64 `env:"CLIENT_RATE_LIMIT" envDefault:"1000"` // requests/s per client per replica; 0 = off
	ClientRateBurst int     `env:"CLIENT_RATE_BURST" envDefault:"2000"`

	ReplicaID           string          `env:"GATEWAY_REPLICA_ID"` // stable per replica; default the host (pod) name
	OutboxConcurrency   int             `env:"OUTBOX_CONCURRENCY" envDefault:"32"`
	MeshSendsPerMailbox int             `env:"MESH_MAX_CONCURRENT_SENDS" envDefault:"16"`
	OutboxRetryBackoff  []time.Duration `env:"OUTBOX_RETRY_BACKOFF" envDefault:"2s,5s,15s,30s,1m,2m,5m,10m" envSeparator:","`
	OutboxMaxAttempts   int             `env:"OUTBOX_MAX_ATTEMPTS" envDefault:"150"`      // with the backoff above: about 24 h of MESH outage
	OutboxSendMemory    int64           `env:"OUTBOX_SEND_MEMORY" envDefault:"268435456"` // chunk buffers of concurrent multi-chunk sends (256 MiB)

	InboxPollInterval time.Duration `env:"INBOX_POLL_INTERVAL" envDefault:"5m"`
	InfAckDeadline    time.Duration `env:"INF_ACK_DEADLINE" envDefault:"4h"`
	BusAckDeadline    time.Duration `env:"BUS_ACK_DEADLINE" envDefault:"72h"`

	LogFormat string `env:"LOG_FORMAT"` // json (default) | text (default in the embedded demo)
	LogLevel  string `env:"LOG_LEVEL" envDefault:"info"`

	OTLPEndpoint string `env:"OTEL_EXPORTER_OTLP_ENDPOINT"`

	DemoWebhookURL string `env:"DEMO_WEBHOOK_URL"` // embedded demo only: where the demo client's webhooks go
}

// Embedded reports whether the gateway should run its self-contained demo:
// no Redis and no MESH configured.
func (c *Config) Embedded() bool {
	return c.RedisURL == "" && c.MeshURL == "" && c.GatewayConfig == ""
}

// Load reads the environment through getenv and validates the result.
func Load(getenv func(string) string) (*Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{FuncMap: nil, Environment: environ(getenv)}); err != nil {
		return nil, fmt.Errorf("env.Parse: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("PORT %d out of range", c.Port))
	}
	if c.AdminPort < 0 || c.AdminPort > 65535 {
		errs = append(errs, fmt.Errorf("ADMIN_PORT %d out of range", c.AdminPort))
	}
	if c.MeshURL != "" {
		u, err := url.Parse(c.MeshURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, errors.New("MESH_URL must be an http(s) URL"))
		}
		if c.GatewayConfig == "" && (c.MeshMailboxID == "" || c.MeshMailboxPassword == "" || c.MeshSharedKey == "") {
			errs = append(errs, errors.New("MESH_URL needs MESH_MAILBOX_ID, MESH_MAILBOX_PASSWORD and MESH_SHARED_KEY (or a GATEWAY_CONFIG registry)"))
		}
	}
	if (c.MeshClientCert == "") != (c.MeshClientKey == "") {
		errs = append(errs, errors.New("MESH_CLIENT_CERT and MESH_CLIENT_KEY must be set together"))
	}
	if c.RedisURL == "" && (c.MeshURL != "" || c.GatewayConfig != "") {
		errs = append(errs, errors.New("REDIS_URL is required outside the embedded demo (tracking must be durable)"))
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			errs = append(errs, errors.New("REDIS_URL must be a redis://, rediss:// or unix:// URL"))
		}
	}
	if c.MeshChunkSize < MinChunkSize || c.MeshChunkSize > MaxChunkSize {
		errs = append(errs, fmt.Errorf("MESH_CHUNK_SIZE must be between %d (5 MiB) and %d bytes", MinChunkSize, MaxChunkSize))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, errors.New("MAX_BODY_BYTES must be at least 1024"))
	}
	if c.OutboxSendMemory < 2*c.MeshChunkSize {
		errs = append(errs, errors.New("OUTBOX_SEND_MEMORY must hold at least one large send (2 × MESH_CHUNK_SIZE)"))
	}
	if c.MeshLookupCacheTTL < 0 {
		errs = append(errs, errors.New("MESH_LOOKUP_CACHE_TTL must not be negative"))
	}
	if c.ClientRateLimit < 0 || c.ClientRateBurst < 0 {
		errs = append(errs, errors.New("CLIENT_RATE_LIMIT and CLIENT_RATE_BURST must not be negative"))
	}
	if c.RetentionTTL < time.Hour {
		errs = append(errs, errors.New("RETENTION must be at least 1h"))
	}
	if c.OutboxMaxAttempts < 1 {
		errs = append(errs, errors.New("OUTBOX_MAX_ATTEMPTS must be at least 1"))
	}
	if c.OutboxConcurrency < 1 || c.MeshSendsPerMailbox < 1 {
		errs = append(errs, errors.New("OUTBOX_CONCURRENCY and MESH_MAX_CONCURRENT_SENDS must be at least 1"))
	}
	if len(c.OutboxRetryBackoff) == 0 {
		errs = append(errs, errors.New("OUTBOX_RETRY_BACKOFF needs at least one duration"))
	}
	for _, d := range c.OutboxRetryBackoff {
		if d <= 0 {
			errs = append(errs, errors.New("OUTBOX_RETRY_BACKOFF durations must be positive"))
			break
		}
	}
	if c.InboxPollInterval < time.Second {
		errs = append(errs, errors.New("INBOX_POLL_INTERVAL must be at least 1s"))
	}
	switch c.LogFormat {
	case "", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT %q: want json or text", c.LogFormat))
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

// MESHPollInterval is the shortest gap between inbox polls MESH allows:
// clients "MUST poll their assigned inbox … a maximum of once every five
// minutes" (unless more messages are waiting, which the collector handles).
const MESHPollInterval = 5 * time.Minute

// PollsMESHTooOften reports whether polling the inbox every interval breaks
// MESH's rule for the server at meshURL. A loopback server (a local fake,
// the embedded demo) may be polled as often as wanted; INBOX_POLL_INTERVAL
// accepts short intervals for them, and the gateway warns at start-up when
// one is used against a real MESH.
func PollsMESHTooOften(interval time.Duration, meshURL string) bool {
	return interval < MESHPollInterval && !isLoopbackURL(meshURL)
}

func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Names lists every environment variable the gateway reads (README table test).
func Names() []string { return mustFields() }

func mustFields() []string {
	params, err := env.GetFieldParams(&Config{})
	if err != nil {
		panic(err) // static struct tags; a failure is a programming error caught by tests
	}
	out := make([]string, 0, len(params))
	for _, p := range params {
		out = append(out, p.Key)
	}
	return out
}

// environ turns getenv into the map caarlos0/env wants, for the names we read.
func environ(getenv func(string) string) map[string]string {
	m := map[string]string{}
	for _, k := range mustFields() {
		if v := getenv(k); v != "" {
			m[k] = v
		}
	}
	return m
}
