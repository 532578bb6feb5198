package outbox

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// scanBatch bounds the due items handled per tick.
const scanBatch = 100

// every runs fn now and then every PollInterval until ctx is done.
func (w *Worker) every(ctx context.Context, fn func(context.Context)) {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		fn(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Worker) dueIDs(ctx context.Context, key string) []string {
	ids, err := w.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(w.cfg.Now().UnixMilli(), 10), Count: scanBatch,
	}).Result()
	if err != nil && ctx.Err() == nil {
		w.log.WarnContext(ctx, "due scan failed", slog.String("key", key), slog.String("error", err.Error()))
	}
	return ids
}

// moveDueRetries re-queues due retries. Removing the member is the claim:
// the script removes and re-adds atomically, so one replica wins and a
// crash cannot lose the retry.
func (w *Worker) moveDueRetries(ctx context.Context) {
	for _, id := range w.dueIDs(ctx, tracking.OutboxDelayed) {
		if err := w.moveDue.Run(ctx, w.rdb, []string{tracking.OutboxDelayed, tracking.OutboxStream}, id).Err(); err != nil {
			if ctx.Err() == nil {
				w.log.WarnContext(ctx, "retry re-queue failed", slog.String("message_id", id), slog.String("error", err.Error()))
			}
			return
		}
	}
}

// pollTracking makes the due tracking polls. Each is leased for ClaimIdle
// (its score moves forward) so a crash mid-poll only delays it.
func (w *Worker) pollTracking(ctx context.Context) {
	for _, id := range w.dueIDs(ctx, tracking.TrackDue) {
		now := w.cfg.Now()
		won, err := w.leaseTrack.Run(ctx, w.rdb, []string{tracking.TrackDue}, id,
			now.UnixMilli(), now.Add(w.cfg.ClaimIdle).UnixMilli()).Int()
		if err != nil || won == 0 {
			continue
		}
		w.pollOne(ctx, id)
	}
}

func (w *Worker) stopTracking(ctx context.Context, id string) {
	w.rdb.ZRem(context.WithoutCancel(ctx), tracking.TrackDue, id)
}

// pollOne asks MESH for the status of one sent message.
func (w *Worker) pollOne(ctx context.Context, id string) {
	ctx, span := otel.Tracer("github.com/meshgateway/gateway/outbox").Start(ctx, "outbox.track",
		trace.WithAttributes(attribute.String("meshgw.message_id", id)))
	defer span.End()
	rec, err := w.store.Get(ctx, id)
	if errors.Is(err, tracking.ErrNotFound) {
		w.stopTracking(ctx, id)
		return
	}
	if err != nil {
		return // the lease expires and the poll is retried
	}
	// Once delivered (or acked, or failed) MESH tracking has nothing more to say.
	if rec.State != tracking.StateSent || rec.MeshMessageID == "" {
		w.stopTracking(ctx, id)
		return
	}
	sender, ok := w.senders.ForMailbox(rec.Mailbox)
	if !ok {
		w.stopTracking(ctx, id)
		return
	}
	attrs := []any{slog.String("message_id", id), slog.String("mesh_message_id", rec.MeshMessageID)}
	t, err := sender.Track(ctx, rec.MeshMessageID)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		if me, ok := meshbridge.AsError(err); ok && me.HTTPStatus == http.StatusNotFound {
			w.log.WarnContext(ctx, "MESH tracking does not know the message; polling stopped", attrs...)
			w.stopTracking(ctx, id)
			return
		}
		w.log.WarnContext(ctx, "MESH tracking poll failed", append(attrs, slog.String("error", safeDescription(err)))...)
		w.nextPoll(ctx, rec)
		return
	}
	now := w.cfg.Now().UTC()
	switch t.Status {
	case meshbridge.TrackingAcknowledged:
		_, err := w.store.Transition(ctx, id, []tracking.State{tracking.StateSent}, tracking.StateDelivered,
			tracking.Event{Type: tracking.EventDelivered}, func(m *tracking.Message) { m.DeliveredAt = &now })
		if err != nil && !errors.Is(err, tracking.ErrStateConflict) {
			return
		}
		w.log.InfoContext(ctx, "MESH reports the message collected", attrs...)
		w.stopTracking(ctx, id)
	case meshbridge.TrackingError, meshbridge.TrackingUndeliverable:
		last := &tracking.MeshError{Event: t.StatusEvent, Code: t.StatusCode, Description: t.StatusDescription}
		_, err := w.store.Transition(ctx, id, []tracking.State{tracking.StateSent}, tracking.StateUndeliverable,
			tracking.Event{Type: tracking.EventUndeliverable, Code: last.Code, Display: last.Description},
			func(m *tracking.Message) { m.LastError = last })
		if err != nil && !errors.Is(err, tracking.ErrStateConflict) {
			return
		}
		w.log.WarnContext(ctx, "MESH reports the message undeliverable", append(attrs, slog.String("mesh_code", last.Code))...)
		w.stopTracking(ctx, id)
	default:
		w.nextPoll(ctx, rec)
	}
}

// nextPoll counts the poll and schedules the next one, or stops once the
// schedule is exhausted.
func (w *Worker) nextPoll(ctx context.Context, rec *tracking.Message) {
	out, err := w.store.Update(ctx, rec.ID, func(m *tracking.Message) error { m.TrackPolls++; return nil })
	if err != nil {
		return
	}
	if out.TrackPolls >= len(w.cfg.TrackSchedule) {
		w.log.InfoContext(ctx, "MESH tracking schedule exhausted", slog.String("message_id", rec.ID),
			slog.String("mesh_message_id", rec.MeshMessageID), slog.Int("polls", out.TrackPolls))
		w.stopTracking(ctx, rec.ID)
		return
	}
	w.scheduleTrack(ctx, rec.ID, out.TrackPolls, false)
}
