// Package app assembles the gateway from its parts — Redis store, MESH
// clients, outbox worker, inbox collector, webhooks, HTTP API — and runs it.
// The embedded demo (no Redis, no MESH configured) lives in embedded.go.
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/meshgateway/gateway/api"
	"github.com/meshgateway/gateway/auth"
	"github.com/meshgateway/gateway/collector"
	"github.com/meshgateway/gateway/config"
	"github.com/meshgateway/gateway/internal/redisconn"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/outbox"
	"github.com/meshgateway/gateway/registry"
	"github.com/meshgateway/gateway/telemetry"
	"github.com/meshgateway/gateway/tracking"
	"github.com/meshgateway/gateway/webhook"
)

// Version is the gateway version reported in mex-ClientVersion and traces.
const Version = "0.1.0"

// Options are the inputs of New. Listeners are optional (tests pass :0 ones).
type Options struct {
	Config        *config.Config
	Getenv        func(string) string
	Stdout        io.Writer
	Logger        *slog.Logger
	Listener      net.Listener
	AdminListener net.Listener
	// Tuning overrides for tests (zero = production defaults).
	Tuning Tuning
}

// Tuning holds intervals that tests and the embedded demo shorten.
type Tuning struct {
	InboxInterval     time.Duration
	TrackSchedule     []time.Duration
	SendBackoff       []time.Duration
	WebhookSchedule   []time.Duration
	WebhookThrottle   time.Duration // pause after a 429/502/503/504 without Retry-After
	OverdueScan       time.Duration
	WorkerPoll        time.Duration
	OutboxClaimIdle   time.Duration
	Consumer          string
	OutboxConcurrency int
}

// App is a running gateway.
type App struct {
	cfg       *config.Config
	log       *slog.Logger
	rdb       redis.UniversalClient
	reg       *registry.Registry
	store     *tracking.Store
	handler   http.Handler
	metrics   *telemetry.Metrics
	tracing   *telemetry.Tracing
	meshes    map[string]*meshbridge.Client
	workers   []func(ctx context.Context) error
	closers   []func()
	ln        net.Listener
	adminLn   net.Listener
	demo      *demo
	webhooks  *webhook.Dispatcher
	Collector *collector.Collector
}

// New wires every component. Nothing runs until Run; on error everything
// already opened is closed.
func New(ctx context.Context, o Options) (*App, error) {
	a := &App{cfg: o.Config, meshes: map[string]*meshbridge.Client{}}
	if err := a.init(ctx, o); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

func (a *App) init(ctx context.Context, o Options) (err error) {
	cfg := o.Config
	a.log = o.Logger
	if a.log == nil {
		a.log = NewLogger(cfg, o.Stdout)
	}
	a.metrics = telemetry.NewMetrics()
	a.tracing, err = telemetry.SetupTracing(ctx, cfg.OTLPEndpoint, "mesh-gateway", Version)
	if err != nil {
		return fmt.Errorf("telemetry.SetupTracing: %w", err)
	}
	a.closers = append(a.closers, func() { _ = a.tracing.Shutdown(context.Background()) })

	// A stable consumer name lets a restarted replica resume its own pending
	// sends at once (Kubernetes keeps the pod name across container restarts).
	consumer := o.Tuning.Consumer
	if consumer == "" {
		consumer = cfg.ReplicaID
	}
	if consumer == "" {
		consumer, _ = os.Hostname()
	}
	if consumer == "" {
		consumer = "gateway-" + uuid.NewString()[:8]
	}

	if cfg.Embedded() {
		a.demo, err = startDemo(ctx, cfg, a.log, o.Stdout)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, a.demo.close)
		a.reg = a.demo.registry
		a.rdb = a.demo.rdb
		o.Tuning = a.demo.tuning(o.Tuning)
	} else {
		a.reg, err = loadRegistry(cfg, o.Getenv)
		if err != nil {
			return err
		}
		var kind string
		a.rdb, kind, err = redisconn.Open(cfg.RedisURL)
		if err != nil {
			return err
		}
		a.closers = append(a.closers, func() { _ = a.rdb.Close() })
		a.log.Info("redis configured", "mode", kind)
	}

	// Spans for every Redis command when traces are exported (a span per
	// command is too dear to make only to drop it). Statements are left
	// out: they would carry payloads.
	if cfg.OTLPEndpoint != "" {
		if err := redisotel.InstrumentTracing(a.rdb, redisotel.WithDBStatement(false)); err != nil {
			return fmt.Errorf("redisotel.InstrumentTracing: %w", err)
		}
	}
	a.store = tracking.NewStore(a.rdb, tracking.StoreOptions{TTL: cfg.RetentionTTL})
	if warning, err := a.store.CheckDurability(ctx); err != nil {
		a.log.Warn("could not check Redis persistence settings", "error", err)
	} else if warning != "" {
		a.log.Warn("REDIS DURABILITY WARNING: acknowledged messages could be lost", "detail", warning)
	}

	for id, cs := range a.reg.ChunkSizes() {
		if cfg.OutboxSendMemory < 2*cs {
			return fmt.Errorf("OUTBOX_SEND_MEMORY (%d) must hold at least one large send from mailbox %s (2 × its chunkSize %d)", cfg.OutboxSendMemory, id, cs)
		}
	}
	for i := range a.reg.Mailboxes {
		mb := &a.reg.Mailboxes[i]
		c, err := a.newMeshClient(mb, cfg)
		if err != nil {
			return err
		}
		a.meshes[strings.ToUpper(mb.ID)] = c
	}

	verifier, err := auth.NewVerifier(a.reg, a.reg.Audience, auth.NewRedisReplayStore(a.rdb, ""), auth.Options{Logger: a.log})
	if err != nil {
		return fmt.Errorf("auth.NewVerifier: %w", err)
	}

	worker := outbox.NewWorker(a.store, a.rdb, senders(a.meshes), outbox.Config{
		Consumer: consumer, Concurrency: cmp.Or(o.Tuning.OutboxConcurrency, cfg.OutboxConcurrency), ChunkSize: cfg.MeshChunkSize, MailboxChunkSize: a.reg.ChunkSizes(),
		PerMailbox: cfg.MeshSendsPerMailbox, MailboxPerMailbox: a.reg.SendLimits(), Backoff: orDurations(o.Tuning.SendBackoff, cfg.OutboxRetryBackoff),
		MaxAttempts: cfg.OutboxMaxAttempts, SendMemory: cfg.OutboxSendMemory,
		TrackSchedule: o.Tuning.TrackSchedule, PollInterval: o.Tuning.WorkerPoll,
		ClaimIdle: o.Tuning.OutboxClaimIdle, Logger: a.log.With("component", "outbox"),
	})
	a.workers = append(a.workers, worker.Run)

	var inboxes []collector.Inbox
	for _, c := range a.meshes {
		inboxes = append(inboxes, c)
	}
	interval := o.Tuning.InboxInterval
	if interval == 0 {
		interval = cfg.InboxPollInterval
	}
	var pollTooOften []string // mailboxes on a real MESH polled more often than MESH allows
	for _, mb := range a.reg.Mailboxes {
		if config.PollsMESHTooOften(interval, mb.URL) {
			pollTooOften = append(pollTooOften, mb.ID)
		}
	}
	if len(pollTooOften) > 0 {
		a.log.Warn("INBOX_POLL_INTERVAL is below MESH's limit of one inbox poll every 5 minutes; use at least 5m against a real MESH",
			"interval", interval.String(), "mailboxes", pollTooOften)
	}
	a.Collector = collector.New(a.rdb, a.store, inboxes, collector.Config{
		Consumer: consumer, Interval: interval, Logger: a.log.With("component", "collector"), Observer: a.metrics,
	})
	a.workers = append(a.workers, a.Collector.Run)

	watcher := collector.NewOverdueWatcher(a.rdb, a.store, collector.OverdueConfig{
		Consumer: consumer, InfAckDeadline: cfg.InfAckDeadline, BusAckDeadline: cfg.BusAckDeadline,
		ScanInterval: o.Tuning.OverdueScan, Logger: a.log.With("component", "ackwatch"),
	})
	a.workers = append(a.workers, watcher.Run)

	a.webhooks = webhook.NewDispatcher(a.rdb, subscriptions{a.reg}, webhook.Config{
		Consumer: consumer, Schedule: o.Tuning.WebhookSchedule, ThrottlePause: o.Tuning.WebhookThrottle, Logger: a.log.With("component", "webhook"), Metrics: a.metrics,
	})
	a.workers = append(a.workers, a.webhooks.Run)

	if a.demo != nil {
		a.workers = append(a.workers, a.demo.practicesRun)
	}

	a.registerGauges()
	a.handler = a.router(verifier)

	a.ln, a.adminLn = o.Listener, o.AdminListener
	if a.ln == nil {
		if a.ln, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.Port))); err != nil {
			return fmt.Errorf("net.Listen api: %w", err)
		}
	}
	if a.adminLn == nil {
		if a.adminLn, err = net.Listen("tcp", net.JoinHostPort(cfg.Host, fmt.Sprint(cfg.AdminPort))); err != nil {
			_ = a.ln.Close()
			return fmt.Errorf("net.Listen admin: %w", err)
		}
	}
	return nil
}

// Store exposes the tracking store (tests).
func (a *App) Store() *tracking.Store { return a.store }

// Redis exposes the Redis client (tests).
func (a *App) Redis() redis.UniversalClient { return a.rdb }

// URL is the API base URL.
func (a *App) URL() string { return "http://" + a.ln.Addr().String() }

// AdminURL is the metrics base URL.
func (a *App) AdminURL() string { return "http://" + a.adminLn.Addr().String() }

// Demo returns the embedded demo (nil outside it).
func (a *App) Demo() *DemoInfo {
	if a.demo == nil {
		return nil
	}
	return a.demo.info()
}

func (a *App) router(verifier *auth.Verifier) http.Handler {
	opts := api.Options{
		Logger: a.log, Auth: authenticator{verifier}, Store: a.store, Resolver: newCachedResolver(resolver{a.meshes}, a.cfg.MeshLookupCacheTTL),
		Deliveries: deliveries{a.webhooks}, MaxBodyBytes: a.cfg.MaxBodyBytes, RecommendedBytes: a.cfg.RecommendedBytes,
		Ready:      []api.ReadyCheck{{Name: "redis", Check: func(ctx context.Context) error { return redisconn.Ping(ctx, a.rdb) }}},
		Middleware: []gin.HandlerFunc{a.metrics.GinMiddleware},
		Limiter:    a.limiter(),
		PublicURL:  a.cfg.PublicURL, Version: Version,
		Extra: func(r *gin.Engine) {
			registerDocs(r)
			if a.demo != nil {
				a.demo.routes(r)
			}
		},
	}
	return otelhttp.NewHandler(api.NewRouter(opts), "mesh-gateway",
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + routeName(r) }))
}

func (a *App) limiter() api.Limiter {
	if a.cfg.ClientRateLimit <= 0 {
		return nil
	}
	return newClientLimiter(a.cfg.ClientRateLimit, a.cfg.ClientRateBurst)
}

func orDurations(a, b []time.Duration) []time.Duration {
	if len(a) > 0 {
		return a
	}
	return b
}

// routeName keeps ids, and anything else a caller typed into a path, out
// of span names: known prefixes map to their route, the rest is "unmatched".
func routeName(r *http.Request) string {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/messages/"):
		if strings.HasSuffix(p, "/deliveries/replay") {
			return "/v1/messages/{id}/deliveries/replay"
		}
		if strings.HasSuffix(p, "/deliveries") {
			return "/v1/messages/{id}/deliveries"
		}
		return "/v1/messages/{id}"
	case p == "/v1/documents", p == "/v1/messages", strings.HasPrefix(p, "/FHIR/STU3/"), strings.HasPrefix(p, "/swagger/"),
		p == "/docs", p == "/openapi.json", p == "/healthz", p == "/readyz", strings.HasPrefix(p, "/demo/"):
		if strings.HasPrefix(p, "/FHIR/STU3/") && !strings.HasSuffix(p, "$process-message") {
			return "unmatched"
		}
		return p
	default:
		return "unmatched"
	}
}

// Run serves until ctx ends, then shuts down gracefully: stop taking work,
// finish in-flight requests (30 s) and MESH sends (20 s), close Redis.
func (a *App) Run(ctx context.Context) error {
	defer a.close()
	api := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)}
	adminMux := http.NewServeMux()
	adminMux.Handle("/metrics", a.metrics.Handler())
	adminMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	adminMux.HandleFunc("GET /deadletters", a.deadLetters)
	adminMux.HandleFunc("GET /webhooks/disabled", a.disabledWebhooks)
	adminMux.HandleFunc("POST /webhooks/{clientId}/enable", a.enableWebhook)
	admin := &http.Server{Handler: adminMux, ReadHeaderTimeout: 10 * time.Second}

	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, run := range a.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(workCtx); err != nil && workCtx.Err() == nil {
				a.log.Error("background worker stopped", "error", err)
			}
		}()
	}
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(a.ln) }()
	go func() { errc <- admin.Serve(a.adminLn) }()
	a.log.Info("gateway listening", "api", a.URL(), "metrics", a.AdminURL()+"/metrics", "embedded", a.demo != nil)
	if a.demo != nil {
		a.demo.printBanner(a.URL())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("shutting down")
	// Workers take no new work from now on; the outbox lets sends in flight
	// finish (up to 20 s) while in-flight requests finish too.
	stopWork()
	shCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = api.Shutdown(shCtx)
	_ = admin.Shutdown(shCtx)
	wg.Wait()
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("http.Serve: %w", serveErr)
	}
	return nil
}

func (a *App) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

func loadRegistry(cfg *config.Config, getenv func(string) string) (*registry.Registry, error) {
	var reg *registry.Registry
	var err error
	if cfg.GatewayConfig != "" {
		reg, err = registry.Load(cfg.GatewayConfig, getenv)
		if err != nil {
			return nil, fmt.Errorf("registry.Load: %w", err)
		}
	} else {
		reg, err = registry.Parse([]byte("{}"), getenv)
		if err != nil {
			return nil, fmt.Errorf("registry.Parse: %w", err)
		}
	}
	if err := reg.ApplyMeshEnv(getenv); err != nil {
		return nil, fmt.Errorf("registry.ApplyMeshEnv: %w", err)
	}
	if cfg.Audience != "" {
		reg.Audience = cfg.Audience
	}
	if reg.Audience == "" {
		return nil, errors.New("no JWT audience: set GATEWAY_AUDIENCE or 'audience' in GATEWAY_CONFIG")
	}
	if len(reg.Mailboxes) == 0 {
		return nil, errors.New("no MESH mailbox configured: set MESH_* variables or 'mailboxes' in GATEWAY_CONFIG")
	}
	return reg, nil
}

func (a *App) newMeshClient(mb *registry.Mailbox, cfg *config.Config) (*meshbridge.Client, error) {
	var tlsCfg *tls.Config
	if mb.ClientCert != "" || mb.CACert != "" {
		t, err := meshbridge.LoadTLSConfig(mb.ClientCert, mb.ClientKey, mb.CACert)
		if err != nil {
			return nil, fmt.Errorf("meshbridge.LoadTLSConfig %s: %w", mb.ID, err)
		}
		tlsCfg = t
	}
	chunk := mb.ChunkSize
	if chunk == 0 {
		chunk = cfg.MeshChunkSize
	}
	c, err := meshbridge.New(meshbridge.Config{
		BaseURL: mb.URL, MailboxID: mb.ID, Password: mb.Password, SharedKey: mb.SharedKey, TLS: tlsCfg,
		ChunkSize: chunk, Compress: true, CompressThreshold: cfg.MeshCompressThreshold, ClientName: "mesh-gateway", ClientVersion: Version,
		Logger: a.log.With("component", "meshbridge"), WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return otelhttp.NewTransport(a.metrics.MeshTransport(rt),
				otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
					return "MESH " + telemetry.MeshOperation(r.Method, r.URL.Path)
				}))
		},
	})
	if err != nil {
		return nil, fmt.Errorf("meshbridge.New %s: %w", mb.ID, err)
	}
	return c, nil
}
