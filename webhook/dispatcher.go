// Package webhook delivers a client's message events to its webhook endpoint,
// signed per Standard Webhooks v1, at least once, with a durable retry
// schedule kept in Redis.
//
// Flow: the tracking store appends events to the {gw}:events stream. Each
// replica reads it through the "webhooks" consumer group; for every event
// worth delivering it atomically creates a delivery record (one per event and
// endpoint, keyed by the stable webhook-id, kept in its message's hash), puts
// the delivery on the {gw}:wh:due sorted set with a lease, and acknowledges
// the entry. Workers
// attempt the delivery and either finish the record or move it back on the
// sorted set at its next due time. A replica that dies mid-attempt loses
// nothing: its leases run out and any replica claims the deliveries again.
package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/internal/redisconn"
)

// Subscriptions tells the dispatcher where a client wants its webhooks.
// allowPrivate lets a client's endpoint be on a private network (and plain
// http); it is for internal consumers and tests only.
type Subscriptions interface {
	// secrets: the current signing secret first, then any previous one still
	// accepted during a rotation; every one signs each delivery.
	Webhook(clientID string) (url string, secrets []string, allowPrivate bool, ok bool)
}

// Observer receives one outcome per finished attempt (or per delivery given
// up without one): OutcomeDelivered, OutcomeRetry, OutcomeFailed,
// OutcomeDisabled, OutcomeDeferred.
type Observer interface {
	Delivered(outcome string)
}

// Outcomes reported to Observer.
const (
	OutcomeDelivered = "delivered"
	OutcomeRetry     = "retry"
	OutcomeFailed    = "failed"
	OutcomeDisabled  = "disabled"
	// OutcomeDeferred: not attempted, the endpoint is throttled (it answered
	// 429/502/503/504 to another delivery); due again when that ends.
	OutcomeDeferred = "deferred"
)

// Config tunes a Dispatcher. Zero values take the defaults noted.
type Config struct {
	// Consumer names this replica in the consumer group; it must be unique
	// per replica (default: host name, e.g. the pod name).
	Consumer string
	// Workers is the number of concurrent attempts per replica (default 32).
	Workers int
	// Schedule is the delay before each attempt: Schedule[0] before the first
	// (0 = immediately), Schedule[i] between attempt i and i+1; its length is
	// the number of attempts (default DefaultSchedule). Delays get ±20% jitter.
	Schedule []time.Duration
	// Timeout bounds one attempt, connection included (default 15 s).
	Timeout time.Duration
	// ClaimIdle is how long a stream entry may stay unacknowledged before
	// another replica takes it over (default 30 s).
	ClaimIdle time.Duration
	// PollInterval is how often due retries are looked for (default 1 s).
	PollInterval time.Duration
	// Retention is how long delivery records are kept after their last
	// change (default 30 days).
	Retention time.Duration
	// ThrottlePause is how long an endpoint that answered 429/502/503/504
	// without Retry-After gets no attempts (default 30 s).
	ThrottlePause time.Duration
	// MaxRetryAfter caps a receiver's Retry-After (default: the longest
	// Schedule delay).
	MaxRetryAfter time.Duration
	// HTTPClient replaces the built-in client. The built-in one checks every
	// dialled address (SSRF guard) and never uses a proxy; with a custom
	// client only the pre-attempt CheckTarget applies. Redirects are never
	// followed either way.
	HTTPClient *http.Client
	// Resolver is used by CheckTarget (default net.DefaultResolver).
	Resolver Resolver
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives ids and codes only (default: discard).
	Logger *slog.Logger
	// Metrics is optional.
	Metrics Observer
}

// DefaultSchedule is the Standard Webhooks retry schedule: immediately,
// then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h, so a
// delivery is given up after about three days — a receiver that is down
// from Friday evening still gets its events on Monday.
func DefaultSchedule() []time.Duration {
	return []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
		5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}
}

// leaseMargin is the slack kept between the end of an attempt and the end of
// its lease, for Redis round trips and clock skew between replicas.
const leaseMargin = 5 * time.Second

// Dispatcher consumes tracking events and delivers webhooks.
type Dispatcher struct {
	rdb        redis.UniversalClient
	subs       Subscriptions
	cfg        Config
	strict     *http.Client // SSRF-guarded at dial time
	permissive *http.Client // for subscriptions with allowPrivate
	lease      time.Duration
	log        *slog.Logger
}

// NewDispatcher applies the Config defaults; call Run to start it.
func NewDispatcher(rdb redis.UniversalClient, subs Subscriptions, cfg Config) *Dispatcher {
	if cfg.Consumer == "" {
		cfg.Consumer, _ = os.Hostname()
		if cfg.Consumer == "" {
			cfg.Consumer = "webhook-dispatcher"
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = DefaultSchedule()
	}
	cfg.Schedule = append([]time.Duration(nil), cfg.Schedule...)
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = 30 * time.Second
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.ThrottlePause <= 0 {
		cfg.ThrottlePause = 30 * time.Second
	}
	if cfg.MaxRetryAfter <= 0 {
		for _, s := range cfg.Schedule {
			cfg.MaxRetryAfter = max(cfg.MaxRetryAfter, s)
		}
		if cfg.MaxRetryAfter <= 0 {
			cfg.MaxRetryAfter = time.Hour
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dispatcher{
		rdb:   rdb,
		subs:  subs,
		cfg:   cfg,
		lease: 2*cfg.Timeout + 2*leaseMargin,
		log:   cfg.Logger.With("component", "webhook"),
	}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		d.strict, d.permissive = &c, &c
	} else {
		d.strict = newHTTPClient(true, cfg.Workers)
		d.permissive = newHTTPClient(false, cfg.Workers)
	}
	return d
}

// job is one delivery handed to a worker. rec is set when the worker can
// skip loading it (it was just created); leaseUntil is when the delivery
// becomes claimable again by anyone.
type job struct {
	member     string // on the due queue: see queueMember
	rec        *record
	disabled   *string   // hash of the client's disabled endpoint URL, if already read
	throttled  time.Time // with disabled: until when the client's endpoint is throttled
	leaseUntil time.Time
}

// Run consumes events and delivers webhooks until ctx is cancelled. On
// cancellation it lets attempts in flight finish (each bounded by Timeout),
// hands back deliveries not yet started, and returns nil.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.ensureGroup(ctx); err != nil {
		return err
	}
	jobs := make(chan job, 2*d.cfg.Workers)
	done := make(chan completion, 2*d.cfg.Workers)
	var workers, loops, writer sync.WaitGroup
	// Two of each serial stage, so one's Redis round trip overlaps the other's.
	for range 2 {
		writer.Go(func() { d.completer(done) })
		loops.Go(func() { d.readLoop(ctx, jobs) })
	}
	for range d.cfg.Workers {
		workers.Go(func() {
			for j := range jobs {
				if ctx.Err() != nil {
					d.release([]job{j})
					continue
				}
				d.process(context.WithoutCancel(ctx), j, done)
			}
		})
	}
	loops.Go(func() { d.reclaimLoop(ctx, jobs) })
	loops.Go(func() { d.dueLoop(ctx, jobs) })
	loops.Wait()
	close(jobs)
	workers.Wait()
	close(done)
	writer.Wait()
	return nil
}

func (d *Dispatcher) ensureGroup(ctx context.Context) error {
	if err := redisconn.EnsureGroup(ctx, d.rdb, StreamKey, GroupName); err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	return nil
}

// readLoop takes new stream entries for this replica. Entries are read and
// recorded in batches larger than the worker pool so that recording (one
// transaction per batch) keeps ahead of the workers.
func (d *Dispatcher) readLoop(ctx context.Context, jobs chan<- job) {
	readBatch := max(4*d.cfg.Workers, 64)
	block := min(time.Second, max(d.cfg.PollInterval, 50*time.Millisecond))
	for ctx.Err() == nil {
		streams, err := d.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group:    GroupName,
			Consumer: d.cfg.Consumer,
			Streams:  []string{StreamKey, ">"},
			Count:    int64(readBatch),
			Block:    block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.redisTrouble(ctx, "read events", err)
			continue
		}
		for _, s := range streams {
			d.ingestAndPush(ctx, jobs, s.Messages)
		}
	}
}

// reclaimLoop takes over entries that a replica read but never
// acknowledged (it died between reading and recording them).
func (d *Dispatcher) reclaimLoop(ctx context.Context, jobs chan<- job) {
	tick := time.NewTicker(max(d.cfg.ClaimIdle/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		start := "0-0"
		for range 1000 { // bounded: 1000 pages of Workers entries per tick
			msgs, next, err := d.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream:   StreamKey,
				Group:    GroupName,
				Consumer: d.cfg.Consumer,
				MinIdle:  d.cfg.ClaimIdle,
				Start:    start,
				Count:    int64(d.cfg.Workers),
			}).Result()
			if err != nil {
				if ctx.Err() == nil {
					d.redisTrouble(ctx, "reclaim events", err)
				}
				break
			}
			if len(msgs) > 0 {
				d.log.Info("webhook: reclaimed stream entries", "count", len(msgs))
				d.ingestAndPush(ctx, jobs, msgs)
			}
			if next == "0-0" || next == "" || ctx.Err() != nil {
				break
			}
			start = next
		}
	}
}

// dueLoop claims deliveries whose retry is due (or whose lease ran out).
func (d *Dispatcher) dueLoop(ctx context.Context, jobs chan<- job) {
	tick := time.NewTicker(d.cfg.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for ctx.Err() == nil { // drain what is due, a channel's worth at a time
			free := cap(jobs) - len(jobs)
			if free <= 0 {
				break
			}
			now := d.cfg.Now()
			leaseUntil := now.Add(d.lease)
			ids, err := claimScript.Run(ctx, d.rdb, []string{dueKey},
				unixMilli(now), unixMilli(leaseUntil), free).StringSlice()
			if err != nil {
				if ctx.Err() == nil {
					d.redisTrouble(ctx, "claim due deliveries", err)
				}
				break
			}
			list := make([]job, len(ids))
			for i, id := range ids {
				list[i] = job{member: id, leaseUntil: leaseUntil}
			}
			d.push(ctx, jobs, list)
			if len(ids) < free {
				break
			}
		}
	}
}

func (d *Dispatcher) ingestAndPush(ctx context.Context, jobs chan<- job, msgs []redis.XMessage) {
	list, err := d.ingest(ctx, msgs)
	if err != nil {
		// The entries stay pending; reclaimLoop retries them after ClaimIdle.
		d.redisTrouble(ctx, "record deliveries", err)
		return
	}
	d.push(ctx, jobs, list)
}

// push hands jobs to the workers; on shutdown the rest are released.
func (d *Dispatcher) push(ctx context.Context, jobs chan<- job, list []job) {
	for i, j := range list {
		select {
		case jobs <- j:
		case <-ctx.Done():
			d.release(list[i:])
			return
		}
	}
}

// release makes deliveries this replica will not attempt claimable at once,
// instead of after their lease; only if the lease is still this replica's.
func (d *Dispatcher) release(list []job) {
	if len(list) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := unixMilli(d.cfg.Now())
	for _, j := range list {
		if err := releaseScript.Run(ctx, d.rdb, []string{dueKey}, j.member, unixMilli(j.leaseUntil), now).Err(); err != nil {
			d.log.Warn("webhook: release delivery", "member", j.member, "error", err)
		}
	}
}

// redisTrouble logs a Redis failure and pauses briefly so that an outage
// does not spin the loops.
func (d *Dispatcher) redisTrouble(ctx context.Context, what string, err error) {
	if strings.HasPrefix(err.Error(), "NOGROUP") {
		if gerr := d.ensureGroup(ctx); gerr == nil {
			return
		}
	}
	d.log.Error("webhook: redis", "op", what, "error", err)
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
}
