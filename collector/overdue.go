package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/internal/redisconn"
	"github.com/meshgateway/gateway/tracking"
)

// OverdueConfig sets the acknowledgement deadlines. Send Document says the
// sender MUST tell a person when an ack never comes but gives no timeout;
// the defaults are documented in the README with the reasoning.
type OverdueConfig struct {
	Consumer       string
	InfAckDeadline time.Duration // after "sent"
	BusAckDeadline time.Duration // after "sent"
	ScanInterval   time.Duration
	ClaimIdle      time.Duration
	Now            func() time.Time
	Logger         *slog.Logger
}

// OverdueStore is what the watcher needs from the tracking store.
type OverdueStore interface {
	Get(ctx context.Context, id string) (*tracking.Message, error)
	RecordEvent(ctx context.Context, id string, ev tracking.Event, apply func(*tracking.Message) bool) (bool, error)
}

// OverdueWatcher raises ack_overdue events. It follows the event stream: a
// "sent" event arms both deadlines, an ack or a failure disarms them.
type OverdueWatcher struct {
	cfg   OverdueConfig
	rdb   redis.UniversalClient
	store OverdueStore
}

const (
	eventsStream = tracking.EventsStream
	ackwatchGrp  = "ackwatch"
	dueInf       = "{gw}:ackdue:inf"
	dueBus       = "{gw}:ackdue:bus"
)

// NewOverdueWatcher builds the watcher.
func NewOverdueWatcher(rdb redis.UniversalClient, store OverdueStore, cfg OverdueConfig) *OverdueWatcher {
	if cfg.InfAckDeadline <= 0 {
		cfg.InfAckDeadline = 4 * time.Hour
	}
	if cfg.BusAckDeadline <= 0 {
		cfg.BusAckDeadline = 72 * time.Hour
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = time.Minute
	}
	if cfg.ClaimIdle <= 0 {
		cfg.ClaimIdle = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Consumer == "" {
		cfg.Consumer = "ackwatch"
	}
	return &OverdueWatcher{cfg: cfg, rdb: rdb, store: store}
}

// Run follows events and scans deadlines until ctx ends.
func (w *OverdueWatcher) Run(ctx context.Context) error {
	if err := redisconn.EnsureGroup(ctx, w.rdb, eventsStream, ackwatchGrp); err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	go w.scanLoop(ctx)
	for ctx.Err() == nil {
		if err := w.FollowOnce(ctx, 2*time.Second); err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "ack watcher read failed", "error", err)
			sleep(ctx, time.Second)
		}
	}
	return nil
}

func (w *OverdueWatcher) scanLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.ScanInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := w.ScanOnce(ctx); err != nil && ctx.Err() == nil {
				w.cfg.Logger.WarnContext(ctx, "ack deadline scan failed", "error", err)
			}
		}
	}
}

// FollowOnce reads one batch of events (new ones, and a dead replica's
// pending ones) and arms or disarms deadlines.
func (w *OverdueWatcher) FollowOnce(ctx context.Context, block time.Duration) error {
	claimed, _, err := w.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{Stream: eventsStream, Group: ackwatchGrp,
		Consumer: w.cfg.Consumer, MinIdle: w.cfg.ClaimIdle, Start: "0", Count: 100}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis XAUTOCLAIM: %w", err)
	}
	msgs := claimed
	streams, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: ackwatchGrp, Consumer: w.cfg.Consumer,
		Streams: []string{eventsStream, ">"}, Count: 500, Block: block}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("redis XREADGROUP: %w", err)
	}
	for _, s := range streams {
		msgs = append(msgs, s.Messages...)
	}
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(msgs))
	_, err = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range msgs {
			w.apply(ctx, p, m.Values)
			ids = append(ids, m.ID)
		}
		p.XAck(ctx, eventsStream, ackwatchGrp, ids...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis pipeline: %w", err)
	}
	return nil
}

func (w *OverdueWatcher) apply(ctx context.Context, p redis.Pipeliner, v map[string]any) {
	id, _ := v["messageId"].(string)
	typ, _ := v["type"].(string)
	state, _ := v["state"].(string)
	if id == "" {
		return
	}
	at := w.cfg.Now()
	if s, _ := v["at"].(string); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			at = t
		}
	}
	switch tracking.EventType(typ) {
	case tracking.EventSent:
		p.ZAddNX(ctx, dueInf, redis.Z{Score: float64(at.Add(w.cfg.InfAckDeadline).UnixMilli()), Member: id})
		p.ZAddNX(ctx, dueBus, redis.Z{Score: float64(at.Add(w.cfg.BusAckDeadline).UnixMilli()), Member: id})
	case tracking.EventInfAck:
		p.ZRem(ctx, dueInf, id)
		if tracking.State(state).Terminal() {
			p.ZRem(ctx, dueBus, id)
		}
	case tracking.EventBusAck:
		p.ZRem(ctx, dueInf, id)
		p.ZRem(ctx, dueBus, id)
	default:
		if tracking.State(state).Terminal() {
			p.ZRem(ctx, dueInf, id)
			p.ZRem(ctx, dueBus, id)
		}
	}
}

// ScanOnce raises ack_overdue for every deadline passed; it returns how many.
// Claiming by ZREM makes each deadline fire once across replicas.
func (w *OverdueWatcher) ScanOnce(ctx context.Context) (int, error) {
	now := w.cfg.Now()
	raised := 0
	for _, q := range []struct {
		key, kind string
	}{{dueInf, "infrastructure"}, {dueBus, "business"}} {
		ids, err := w.rdb.ZRangeByScore(ctx, q.key, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: 500}).Result()
		if err != nil {
			return raised, fmt.Errorf("redis ZRANGEBYSCORE: %w", err)
		}
		for _, id := range ids {
			n, err := w.rdb.ZRem(ctx, q.key, id).Result()
			if err != nil {
				return raised, fmt.Errorf("redis ZREM: %w", err)
			}
			if n == 0 {
				continue // another replica claimed it
			}
			ok, err := w.raise(ctx, id, q.kind, now)
			if err != nil {
				// Put it back so the deadline is not lost.
				w.rdb.ZAdd(context.WithoutCancel(ctx), q.key, redis.Z{Score: float64(now.UnixMilli()), Member: id})
				return raised, err
			}
			if ok {
				raised++
			}
		}
	}
	return raised, nil
}

func (w *OverdueWatcher) raise(ctx context.Context, id, kind string, now time.Time) (bool, error) {
	m, err := w.store.Get(ctx, id)
	if errors.Is(err, tracking.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	acked := func(m *tracking.Message) bool {
		return m.State.Terminal() || (kind == "infrastructure" && m.InfAck != nil) || (kind == "business" && m.BusAck != nil)
	}
	if acked(m) {
		return false, nil
	}
	deadline := w.cfg.InfAckDeadline
	if kind == "business" {
		deadline = w.cfg.BusAckDeadline
	}
	ev := tracking.Event{Type: tracking.EventAckOverdue, At: now.UTC(), Code: kind,
		Display: fmt.Sprintf("no %s acknowledgement within %s of sending: tell a person (GP Connect Send Document)", kind, deadline)}
	// The flag and the event in one write: a crash or a reader between two
	// writes would see an overdue message with no ack_overdue event (and no
	// webhook). The ack may also have arrived since the read above.
	raised, err := w.store.RecordEvent(ctx, id, ev, func(m *tracking.Message) bool {
		if acked(m) {
			return false
		}
		m.AckOverdue = true
		return true
	})
	if err != nil || !raised {
		return false, err
	}
	w.cfg.Logger.WarnContext(ctx, "acknowledgement overdue", "message_id", id, "kind", kind)
	return true, nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
