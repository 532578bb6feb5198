package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/api"
	"github.com/meshgateway/gateway/auth"
	"github.com/meshgateway/gateway/config"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/outbox"
	"github.com/meshgateway/gateway/registry"
	"github.com/meshgateway/gateway/telemetry"
	"github.com/meshgateway/gateway/tracking"
	"github.com/meshgateway/gateway/webhook"
)

// NewLogger builds the slog logger: JSON by default, text in the embedded
// demo, trace ids stamped on every line.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	format := cfg.LogFormat
	if format == "" {
		format = "json"
		if cfg.Embedded() {
			format = "text"
		}
	}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if format == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(telemetry.TraceHandler{Handler: h})
}

// authenticator adapts auth.Verifier to the API's interface.
type authenticator struct{ v *auth.Verifier }

func (a authenticator) Authenticate(ctx context.Context, header string) (*api.Caller, error) {
	token, err := auth.FromBearer(header)
	if err == nil {
		var caller *auth.Caller
		caller, err = a.v.Verify(ctx, token)
		if err == nil {
			return &api.Caller{ClientID: caller.ClientID, MaySendAs: caller.Client.MaySendAs, MayUseODS: caller.Client.MayUseODS}, nil
		}
	}
	var ae *auth.Error
	if errors.As(err, &ae) {
		if ae.Status >= 500 {
			return nil, err // e.g. Redis down: the API answers 503
		}
		return nil, &api.AuthError{Status: ae.Status, Description: ae.Description}
	}
	return nil, err
}

// senders adapts the MESH clients to the outbox worker.
type senders map[string]*meshbridge.Client

func (s senders) ForMailbox(id string) (outbox.MeshSender, bool) {
	c, ok := s[strings.ToUpper(id)]
	return c, ok
}

// resolver resolves ODS codes with MESH endpoint lookup from the sender's mailbox.
type resolver struct{ meshes map[string]*meshbridge.Client }

func (r resolver) ResolveODS(ctx context.Context, sender, ods, workflow string) (string, error) {
	c, ok := r.meshes[strings.ToUpper(sender)]
	if !ok {
		return "", fmt.Errorf("no MESH client for mailbox %s", sender)
	}
	eps, err := c.EndpointLookup(ctx, ods, workflow)
	if err != nil {
		return "", fmt.Errorf("meshbridge.EndpointLookup: %w", err)
	}
	if len(eps) == 0 {
		return "", api.ErrNoEndpoint
	}
	return eps[0].MailboxID, nil
}

// deliveries adapts the webhook dispatcher to the API.
type deliveries struct{ d *webhook.Dispatcher }

func (d deliveries) Deliveries(ctx context.Context, id string) (any, error) {
	return d.d.Deliveries(ctx, id)
}
func (d deliveries) Replay(ctx context.Context, client, id string) (int, error) {
	return d.d.Replay(ctx, client, id)
}

// subscriptions adapts the registry to the webhook dispatcher.
type subscriptions struct{ reg *registry.Registry }

func (s subscriptions) Webhook(clientID string) (string, []string, bool, bool) {
	c, ok := s.reg.Client(clientID)
	if !ok || c.Webhook == nil || c.Webhook.URL == "" {
		return "", nil, false, false
	}
	return c.Webhook.URL, c.Webhook.Secrets(), c.AllowPrivateWebhook, true
}

// registerGauges exports outbox depth/age and messages by state, computed
// from Redis at scrape time.
func (a *App) registerGauges() {
	a.metrics.GaugeVecFunc("outbox_depth", "Messages waiting to be sent: queued (stream backlog + pending) and delayed retries.",
		[]string{"queue"}, func(ctx context.Context) (map[string]float64, error) {
			out := map[string]float64{}
			groups, err := a.rdb.XInfoGroups(ctx, tracking.OutboxStream).Result()
			if err != nil && !isNoStream(err) {
				return nil, err
			}
			for _, g := range groups {
				out["pending"] += float64(g.Pending)
				out["backlog"] += float64(g.Lag)
			}
			n, err := a.rdb.ZCard(ctx, tracking.OutboxDelayed).Result()
			if err != nil {
				return nil, err
			}
			out["delayed"] = float64(n)
			return out, nil
		})
	a.metrics.GaugeVecFunc("outbox_oldest_age_seconds", "Age of the oldest message still pending in the outbox.", nil,
		func(ctx context.Context) (map[string]float64, error) {
			p, err := a.rdb.XPending(ctx, tracking.OutboxStream, outbox.Group).Result()
			if err != nil && !isNoStream(err) {
				return nil, err
			}
			age := 0.0
			if p != nil && p.Count > 0 {
				if ms, ok := streamIDTime(p.Lower); ok {
					age = time.Since(ms).Seconds()
				}
			}
			return map[string]float64{"": age}, nil
		})
	a.metrics.GaugeVecFunc("messages", "Tracked messages by state (within the retention period).", []string{"state"},
		func(ctx context.Context) (map[string]float64, error) {
			counts, err := a.store.CountByState(ctx)
			if err != nil {
				return nil, err
			}
			out := map[string]float64{}
			for _, s := range tracking.AllStates {
				out[string(s)] = float64(counts[s])
			}
			return out, nil
		})
	a.metrics.GaugeVecFunc("webhook_endpoints_disabled", "Client webhook endpoints getting no deliveries (410 Gone or sustained failure): see GET /webhooks/disabled on the admin port.", nil,
		func(ctx context.Context) (map[string]float64, error) {
			list, err := a.webhooks.DisabledEndpoints(ctx)
			return map[string]float64{"": float64(len(list))}, err
		})
	if a.Collector != nil {
		a.metrics.GaugeVecFunc("dead_letters", "Inbox messages kept for operators because they could not be correlated.", nil,
			func(ctx context.Context) (map[string]float64, error) {
				n, err := a.Collector.DeadLetters().Count(ctx)
				return map[string]float64{"": float64(n)}, err
			})
	}
}

func isNoStream(err error) bool {
	return errors.Is(err, redis.Nil) || (err != nil && (strings.Contains(err.Error(), "no such key") || strings.Contains(err.Error(), "NOGROUP")))
}

func streamIDTime(id string) (time.Time, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return time.Time{}, false
	}
	var v int64
	if _, err := fmt.Sscan(ms, &v); err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(v), true
}

// disabledWebhooks lists client webhook endpoints that get no deliveries.
func (a *App) disabledWebhooks(w http.ResponseWriter, r *http.Request) {
	list, err := a.webhooks.DisabledEndpoints(r.Context())
	a.writeAdminList(w, r, "disabled", list, err)
}

// enableWebhook lifts the disablement of a client's endpoint; what it missed
// is sent again with POST /v1/messages/{id}/deliveries/replay.
func (a *App) enableWebhook(w http.ResponseWriter, r *http.Request) {
	client := r.PathValue("clientId") // also a client no longer registered: its stale entry goes
	if err := a.webhooks.EnableEndpoint(r.Context(), client); err != nil {
		a.log.ErrorContext(r.Context(), "enable webhook endpoint", "client_id", client, "error", err)
		http.Error(w, "could not enable the endpoint", http.StatusServiceUnavailable)
		return
	}
	a.log.InfoContext(r.Context(), "webhook endpoint enabled by an operator", "client_id", client)
	w.WriteHeader(http.StatusNoContent)
}

// deadLetters serves the inbox messages the collector could not correlate,
// newest first, on the admin port (operators only: they may hold patient data).
func (a *App) deadLetters(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			limit = n
		}
	}
	list, err := a.Collector.DeadLetters().List(r.Context(), limit)
	a.writeAdminList(w, r, "deadLetters", list, err)
}

// writeAdminList answers an admin listing as {"<name>": list}, or 503 when
// it could not be read.
func (a *App) writeAdminList(w http.ResponseWriter, r *http.Request, name string, list any, err error) {
	if err != nil {
		a.log.ErrorContext(r.Context(), "admin listing unavailable", "list", name, "error", err)
		http.Error(w, name+" unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{name: list})
}
