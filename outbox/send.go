package outbox

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// Error codes recorded in LastError for failures MESH did not name.
const (
	CodeNoMailbox    = "GW_NO_MAILBOX"   // no MESH client configured for the sending mailbox
	CodeInvalid      = "GW_INVALID"      // the message cannot be sent as stored (header validation)
	CodePayloadGone  = "GW_PAYLOAD_GONE" // the stored document expired before it could be sent
	CodeGaveUp       = "GW_MAX_ATTEMPTS" // transient failures exhausted MaxAttempts
	CodeTransportErr = "GW_TRANSPORT"    // network or timeout talking to MESH
)

// process drives one message as far as it can go now. done means the stream
// entry can be acked; a non-zero retryAt moves it to the delayed set; neither
// leaves it pending (shutdown or a Redis failure) to be taken up again.
// rec and err are the record as read with the lock (nil, nil to read it now).
func (w *Worker) process(ctx context.Context, id string, rec *tracking.Message, err error) (done bool, retryAt time.Time) {
	if rec == nil && err == nil {
		rec, err = w.store.Get(ctx, id)
	}
	if errors.Is(err, tracking.ErrNotFound) {
		// Nothing to send without the record. After a 202 this means Redis
		// lost it: retention ran out, or eviction (maxmemory-policy) took it.
		w.log.ErrorContext(ctx, "outbox entry for a message whose record is gone (retention expired, or Redis evicted it: check maxmemory-policy noeviction)", slog.String("message_id", id))
		return true, time.Time{}
	}
	if err != nil {
		w.log.WarnContext(ctx, "outbox load failed", slog.String("message_id", id), slog.String("error", err.Error()))
		return false, time.Time{}
	}
	switch rec.State {
	case tracking.StateAccepted, tracking.StateSending:
	case tracking.StateSent:
		// A crash between the sent transition and scheduling the first poll.
		w.scheduleTrack(ctx, rec.ID, rec.TrackPolls, true)
		return true, time.Time{}
	default:
		return true, time.Time{}
	}
	if rec.Attempts >= w.cfg.MaxAttempts {
		// Attempts are counted before each send, so this is reached when the
		// last attempts ended with no outcome at all: the replica died or was
		// stopped mid-send each time (a document that kills it, say).
		w.log.ErrorContext(ctx, "giving up on MESH send: attempts ended without an outcome", slog.String("message_id", rec.ID),
			slog.Int("attempt", rec.Attempts))
		return w.fail(ctx, rec, tracking.StateFailed, tracking.EventFailed, &tracking.MeshError{Code: CodeGaveUp,
			Description: "gave up after " + itoa(rec.Attempts) + " attempts that ended without an outcome (the gateway stopped mid-send)"}), time.Time{}
	}
	sender, ok := w.senders.ForMailbox(rec.Mailbox)
	if !ok {
		// Configuration, not the message: say so loudly.
		w.log.ErrorContext(ctx, "no MESH client for the sending mailbox", slog.String("message_id", rec.ID),
			slog.String("mailbox", rec.Mailbox))
		return w.fail(ctx, rec, tracking.StateFailed, tracking.EventFailed,
			&tracking.MeshError{Code: CodeNoMailbox, Description: "no MESH client for the sending mailbox"}), time.Time{}
	}
	slot := w.mailboxSlot(rec.Mailbox)
	// Wait a little for the mailbox, then give the handler back: a backlog
	// for one busy (or tightly limited) mailbox must not hold every handler
	// while other mailboxes' messages wait behind it.
	wait := time.NewTimer(w.cfg.PollInterval)
	select {
	case slot <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		return false, w.cfg.Now() // due again at the next look (PollInterval)
	case <-ctx.Done():
		wait.Stop()
		return false, time.Time{}
	}
	defer func() { <-slot }()
	release, ok := w.reserveMemory(ctx, rec)
	if !ok {
		return false, time.Time{} // shutting down: stays pending
	}
	defer release()

	if rec.MeshMessageID != "" {
		return w.resume(ctx, rec, sender)
	}
	return w.sendFirst(ctx, rec, sender)
}

func (w *Worker) sendOptions(rec *tracking.Message) meshbridge.SendOptions {
	return meshbridge.SendOptions{
		To: rec.To, WorkflowID: rec.WorkflowID, Subject: rec.Subject, LocalID: rec.LocalID,
		FileName: rec.FileName, ContentType: rec.ContentType, ChunkSize: rec.ChunkSize,
		Gzip: rec.Gzipped, // nil on older records: the client decides, as it did then
	}
}

// sendFirst records the attempt durably, then POSTs the message from chunk 1.
// An earlier attempt with no MESH id (crash, or an answer that never came) is
// a reconcile: the bytes are identical, so the Bundle identifier is too and
// the practice's system can spot a duplicate (ITK3 20007).
func (w *Worker) sendFirst(ctx context.Context, rec *tracking.Message, sender MeshSender) (bool, time.Time) {
	evType := tracking.EventSendAttempt
	if rec.FirstChunkUnconfirmed {
		evType = tracking.EventResent
	}
	id := rec.ID
	// Chunk 1's encoding is recorded with the chunk size: every later chunk,
	// also one sent by a resume after a restart, must repeat it.
	gzipped := sender.Gzips(rec.PayloadSize)
	// Still no MESH id: the record was read before waiting for the mailbox
	// slot and memory, and a send that got one must be resumed, not redone.
	noMeshID := func(m *tracking.Message) bool { return m.MeshMessageID == "" }
	rec, err := w.store.TransitionFromIf(ctx, rec, []tracking.State{tracking.StateAccepted, tracking.StateSending}, noMeshID,
		tracking.StateSending, tracking.Event{Type: evType, Attempt: rec.Attempts + 1}, func(m *tracking.Message) {
			m.Attempts++
			m.FirstChunkAttempts++
			m.FirstChunkUnconfirmed = true
			m.ChunkSize = w.configuredChunkSize(m.Mailbox)
			m.Gzipped = &gzipped
			m.ChunksSent = 0
		})
	if errors.Is(err, tracking.ErrStateConflict) || errors.Is(err, tracking.ErrNotFound) {
		// Sent, failed or in another owner's hands since it was read: the
		// entry stays pending and the next look at it sees the record as is.
		return errors.Is(err, tracking.ErrNotFound), time.Time{}
	}
	if err != nil {
		w.log.WarnContext(ctx, "outbox record attempt failed", slog.String("message_id", id), slog.String("error", err.Error()))
		return false, time.Time{}
	}
	w.log.InfoContext(ctx, "sending to MESH", slog.String("message_id", rec.ID), slog.String("mailbox", rec.Mailbox),
		slog.Int("attempt", rec.Attempts), slog.Bool("reconcile", evType == tracking.EventResent))
	body, err := w.store.OpenPayloadOf(ctx, rec, 0)
	if err != nil {
		return w.payloadError(ctx, rec, err)
	}
	defer body.Close()
	opts := w.sendOptions(rec)
	if rec.PayloadSize > rec.ChunkSize {
		// Durable before chunk 2: a crash from here on resumes, not resends.
		// (A one-chunk message is recorded as sent straight after the 202.)
		opts.OnMessageID = func(ctx context.Context, meshID string) error {
			_, err := w.store.Update(ctx, rec.ID, func(m *tracking.Message) error {
				m.MeshMessageID, m.ChunksSent, m.FirstChunkUnconfirmed = meshID, 1, false
				return nil
			})
			return err
		}
	}
	res, err := sender.Send(ctx, opts, body, rec.PayloadSize)
	return w.outcome(ctx, rec, res, err)
}

// resume finishes a message MESH already knows (crash or failure after
// chunk 1): ask tracking whether the upload completed, else continue from
// the first chunk MESH has not accepted.
func (w *Worker) resume(ctx context.Context, rec *tracking.Message, sender MeshSender) (bool, time.Time) {
	cs := w.chunkSize(rec)
	total := int((rec.PayloadSize + cs - 1) / cs)
	sent := max(rec.ChunksSent, 1) // the MESH id came with chunk 1's 202
	if sent >= total {
		return w.markSent(ctx, rec, rec.MeshMessageID)
	}
	if t, err := sender.Track(ctx, rec.MeshMessageID); err == nil {
		switch t.Status {
		case meshbridge.TrackingAccepted, meshbridge.TrackingAcknowledged:
			return w.markSent(ctx, rec, rec.MeshMessageID)
		case meshbridge.TrackingError, meshbridge.TrackingUndeliverable:
			return w.fail(ctx, rec, tracking.StateUndeliverable, tracking.EventUndeliverable, &tracking.MeshError{
				Event: t.StatusEvent, Code: t.StatusCode, Description: t.StatusDescription}), time.Time{}
		}
	}
	id := rec.ID
	rec, err := w.store.Update(ctx, id, func(m *tracking.Message) error {
		m.Attempts++
		m.ChunkSize = cs
		return nil
	})
	if errors.Is(err, tracking.ErrNotFound) {
		return true, time.Time{}
	}
	if err != nil {
		w.log.WarnContext(ctx, "outbox record attempt failed", slog.String("message_id", id), slog.String("error", err.Error()))
		return false, time.Time{}
	}
	from := sent + 1
	w.log.InfoContext(ctx, "resuming MESH upload", slog.String("message_id", rec.ID), slog.String("mesh_message_id", rec.MeshMessageID),
		slog.Int("from_chunk", from), slog.Int("chunks", total), slog.Int("attempt", rec.Attempts))
	body, err := w.store.OpenPayloadOf(ctx, rec, int64(from-1)*cs)
	if err != nil {
		return w.payloadError(ctx, rec, err)
	}
	defer body.Close()
	opts := w.sendOptions(rec)
	opts.ChunkSize = cs
	res, err := sender.ContinueSend(ctx, rec.MeshMessageID, from, body, rec.PayloadSize, opts)
	if err == nil {
		res.MessageID = rec.MeshMessageID
	}
	return w.outcome(ctx, rec, res, err)
}

func (w *Worker) payloadError(ctx context.Context, rec *tracking.Message, err error) (bool, time.Time) {
	if errors.Is(err, tracking.ErrPayloadGone) {
		return w.fail(ctx, rec, tracking.StateFailed, tracking.EventFailed,
			&tracking.MeshError{Code: CodePayloadGone, Description: "stored document expired before sending"}), time.Time{}
	}
	w.log.WarnContext(ctx, "outbox open payload failed", slog.String("message_id", rec.ID), slog.String("error", err.Error()))
	return false, time.Time{}
}

// outcome classifies the result of a send.
func (w *Worker) outcome(ctx context.Context, rec *tracking.Message, res meshbridge.SendResult, err error) (bool, time.Time) {
	if err == nil {
		return w.markSent(ctx, rec, res.MessageID)
	}
	if ctx.Err() != nil {
		// Shutting down mid-send: the attempt is on record, the entry stays
		// pending and the next owner resumes or reconciles.
		w.log.InfoContext(ctx, "send abandoned at shutdown", slog.String("message_id", rec.ID))
		return false, time.Time{}
	}
	var chunkErr *meshbridge.ChunkError
	if errors.As(err, &chunkErr) && res.Chunks > 0 {
		if _, uerr := w.store.Update(ctx, rec.ID, func(m *tracking.Message) error {
			if m.MeshMessageID == "" {
				m.MeshMessageID = chunkErr.MessageID
			}
			m.ChunksSent = max(m.ChunksSent, res.Chunks)
			return nil
		}); uerr != nil {
			w.log.WarnContext(ctx, "outbox record progress failed", slog.String("message_id", rec.ID), slog.String("error", uerr.Error()))
		}
	}
	var valErr *meshbridge.ValidationError
	if errors.As(err, &valErr) {
		return w.fail(ctx, rec, tracking.StateFailed, tracking.EventFailed,
			&tracking.MeshError{Code: CodeInvalid, Description: valErr.Error()}), time.Time{}
	}
	var firstErr *meshbridge.FirstChunkError
	isFirst := errors.As(err, &firstErr)
	uncertain := isFirst && firstErr.Uncertain
	meshErr, isMesh := meshbridge.AsError(err)
	if isMesh && authFailure(meshErr.HTTPStatus) {
		// MESH refused the mailbox's credentials (password rotation, an
		// inactive mailbox, a token timestamp over 2 h off): nothing was
		// created, the message is not at fault and a later retry is safe.
		// Operations must act, hence ERROR; the send retries as usual.
		w.log.ErrorContext(ctx, "MESH refused the mailbox's authentication; the send will be retried (check the mailbox password, that the mailbox is active, and the clock)",
			slog.String("message_id", rec.ID), slog.String("mailbox", rec.Mailbox),
			slog.Int("http_status", meshErr.HTTPStatus), slog.String("mesh_description", meshErr.Description))
	}
	if isMesh && !uncertain && permanent(meshErr.HTTPStatus) {
		w.log.WarnContext(ctx, "MESH rejected the message", slog.String("message_id", rec.ID),
			slog.Int("http_status", meshErr.HTTPStatus), slog.String("mesh_event", meshErr.Event),
			slog.String("mesh_code", meshErr.Code))
		return w.fail(ctx, rec, tracking.StateRejected, tracking.EventRejected, &tracking.MeshError{
			Event: meshErr.Event, Code: meshErr.Code, Description: meshErr.Description, HTTPStatus: meshErr.HTTPStatus}), time.Time{}
	}
	return w.retryLater(ctx, rec, err, meshErr, isFirst && !uncertain)
}

// permanent reports whether an HTTP status means the same request will
// never succeed (417 with a MESH code, 400, ...). 401 and 403 are not:
// MESH answers 403 when the mailbox's authentication fails ("Invalid
// Authentication Token", "Request Received from Inactive Mailbox"), which
// creates nothing and is fixed outside the message.
func permanent(status int) bool {
	return status >= 400 && status < 500 && !meshbridge.IsRetryableStatus(status) &&
		status != http.StatusRequestTimeout && status != http.StatusLocked && !authFailure(status)
}

// authFailure reports whether MESH refused the mailbox's credentials.
func authFailure(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}

// retryLater records a transient failure and schedules the next attempt, or
// fails the message once MaxAttempts is reached.
// refused says MESH certainly created no message, so the next attempt is a
// plain send rather than a reconcile.
func (w *Worker) retryLater(ctx context.Context, rec *tracking.Message, err error, meshErr *meshbridge.Error, refused bool) (bool, time.Time) {
	last := &tracking.MeshError{Code: CodeTransportErr, Description: safeDescription(err)}
	var retryAfter time.Duration
	if meshErr != nil {
		last = &tracking.MeshError{Event: meshErr.Event, Code: meshErr.Code, Description: meshErr.Description,
			HTTPStatus: meshErr.HTTPStatus}
		retryAfter = meshErr.RetryAfter
	}
	attrs := []any{slog.String("message_id", rec.ID), slog.String("mesh_message_id", rec.MeshMessageID),
		slog.Int("attempt", rec.Attempts), slog.Int("http_status", last.HTTPStatus), slog.String("mesh_code", last.Code),
		slog.String("error", safeDescription(err))}
	if rec.Attempts >= w.cfg.MaxAttempts {
		w.log.ErrorContext(ctx, "giving up on MESH send", attrs...)
		gaveUp := *last
		gaveUp.Code, gaveUp.Description = CodeGaveUp, "gave up after "+itoa(rec.Attempts)+" attempts: "+last.Description
		return w.fail(ctx, rec, tracking.StateFailed, tracking.EventFailed, &gaveUp), time.Time{}
	}
	delay := max(w.backoff(rec.Attempts), retryAfter)
	at := w.cfg.Now().Add(delay)
	w.log.WarnContext(ctx, "MESH send failed, will retry", append(attrs, slog.Duration("retry_in", delay))...)
	if _, err := w.store.Update(ctx, rec.ID, func(m *tracking.Message) error {
		m.LastError = last
		if refused {
			m.FirstChunkUnconfirmed = false
		}
		return nil
	}); err != nil {
		return false, time.Time{}
	}
	if err := w.store.AddEvent(ctx, rec.ID, tracking.Event{Type: tracking.EventSendRetry, Code: last.Code,
		Display: last.Description, Attempt: rec.Attempts}); err != nil {
		return false, time.Time{}
	}
	return false, at
}

// safeDescription bounds an error text for the record and logs. meshbridge
// errors never carry request data, so their text is safe to keep.
func safeDescription(err error) string {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// markSent records a completed send and schedules the first tracking poll.
// MESH holds the message now, so the record must say so: a failed write is
// retried for a while (also during shutdown), because a message left
// 'sending' would be sent again by the next owner.
func (w *Worker) markSent(ctx context.Context, rec *tracking.Message, meshID string) (bool, time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), markSentPatience)
	defer cancel()
	now := w.cfg.Now().UTC()
	var (
		out *tracking.Message
		err error
	)
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		out, err = w.store.TransitionFrom(ctx, rec, []tracking.State{tracking.StateSending}, tracking.StateSent,
			tracking.Event{Type: tracking.EventSent, MeshMessageID: meshID}, func(m *tracking.Message) {
				m.MeshMessageID = meshID
				m.SentAt = &now
				m.FirstChunkUnconfirmed = false
				m.LastError = nil
				if m.ChunkSize > 0 {
					m.ChunksSent = int((m.PayloadSize + m.ChunkSize - 1) / m.ChunkSize)
				}
			})
		if err == nil || errors.Is(err, tracking.ErrStateConflict) || errors.Is(err, tracking.ErrNotFound) {
			break
		}
		w.log.WarnContext(ctx, "outbox record sent failed, retrying", slog.String("message_id", rec.ID),
			slog.String("mesh_message_id", meshID), slog.String("error", err.Error()))
		select {
		case <-ctx.Done():
			w.log.ErrorContext(ctx, "could not record a message MESH accepted; it may be sent again", slog.String("message_id", rec.ID),
				slog.String("mesh_message_id", meshID))
			return false, time.Time{}
		case <-time.After(wait):
		}
	}
	if err != nil {
		return true, time.Time{} // someone else settled it
	}
	w.log.InfoContext(ctx, "sent to MESH", slog.String("message_id", out.ID), slog.String("mesh_message_id", meshID),
		slog.Int("attempt", out.Attempts))
	w.scheduleTrack(ctx, out.ID, 0, true)
	return true, time.Time{}
}

// markSentPatience bounds how long markSent keeps trying to record a send.
const markSentPatience = 30 * time.Second

// fail moves the message to a failed state with the reason on record. It
// reports whether the message is settled (failed now, or already moved on by
// someone else); false leaves the entry pending so the failure is recorded
// on the next pass rather than the message being forgotten in its old state.
func (w *Worker) fail(ctx context.Context, rec *tracking.Message, to tracking.State, ev tracking.EventType, last *tracking.MeshError) bool {
	_, err := w.store.Transition(ctx, rec.ID, []tracking.State{tracking.StateAccepted, tracking.StateSending, tracking.StateSent},
		to, tracking.Event{Type: ev, Code: last.Code, Display: last.Description, Attempt: rec.Attempts},
		func(m *tracking.Message) { m.LastError = last })
	if err != nil && !errors.Is(err, tracking.ErrStateConflict) && !errors.Is(err, tracking.ErrNotFound) {
		w.log.WarnContext(ctx, "outbox record failure failed", slog.String("message_id", rec.ID), slog.String("error", err.Error()))
		return false
	}
	w.log.InfoContext(ctx, "message failed", slog.String("message_id", rec.ID), slog.String("state", string(to)),
		slog.String("mesh_code", last.Code))
	return true
}

// scheduleTrack schedules tracking poll number poll (0-based). onlyIfAbsent
// keeps an existing schedule.
func (w *Worker) scheduleTrack(ctx context.Context, id string, poll int, onlyIfAbsent bool) {
	if poll >= len(w.cfg.TrackSchedule) {
		return
	}
	z := redis.Z{Score: float64(w.cfg.Now().Add(w.cfg.TrackSchedule[poll]).UnixMilli()), Member: id}
	var err error
	if onlyIfAbsent {
		err = w.rdb.ZAddNX(context.WithoutCancel(ctx), tracking.TrackDue, z).Err()
	} else {
		err = w.rdb.ZAdd(context.WithoutCancel(ctx), tracking.TrackDue, z).Err()
	}
	if err != nil {
		w.log.WarnContext(ctx, "tracking poll scheduling failed", slog.String("message_id", id), slog.String("error", err.Error()))
	}
}
