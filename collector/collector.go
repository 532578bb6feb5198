// Package collector polls every sending mailbox's MESH inbox for ITK3
// acknowledgements and MESH error REPORTs, correlates each one to the message
// it answers, records the event, and only then acknowledges it in MESH.
package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// Inbox is the slice of the MESH client the collector needs (*meshbridge.Client).
type Inbox interface {
	MailboxID() string
	Handshake(ctx context.Context) error
	Inbox(ctx context.Context, opts meshbridge.InboxOptions) (*meshbridge.InboxPage, error)
	Download(ctx context.Context, messageID string, w io.Writer) (*meshbridge.MessageMetadata, error)
	Head(ctx context.Context, messageID string) (*meshbridge.MessageMetadata, error)
	Acknowledge(ctx context.Context, messageID string) error
}

// Store is the slice of the tracking store the collector needs.
type Store interface {
	FindByMeshMessageID(ctx context.Context, meshID string) (*tracking.Message, error)
	FindByITK(ctx context.Context, ref string) (*tracking.Message, error)
	Transition(ctx context.Context, id string, from []tracking.State, to tracking.State, ev tracking.Event, mutate func(*tracking.Message)) (*tracking.Message, error)
	TransitionVia(ctx context.Context, id string, from []tracking.State, via []tracking.Event, to tracking.State, ev tracking.Event, mutate func(*tracking.Message)) (*tracking.Message, error)
	AddEvent(ctx context.Context, id string, ev tracking.Event) error
	Update(ctx context.Context, id string, mutate func(*tracking.Message) error) (*tracking.Message, error)
}

// Observer receives poll outcomes for metrics (optional).
type Observer interface {
	InboxPolled(mailbox, outcome string, messages int)
	AckLatency(kind string, d time.Duration)
}

// Config tunes the collector.
type Config struct {
	Consumer      string        // replica id, used as the lease owner
	Interval      time.Duration // between polls when the inbox was not full (MESH: at most every 5 minutes)
	PageSize      int           // max_results per listing (MESH default 500)
	Concurrency   int           // messages processed in parallel per page
	MaxAckBytes   int64         // a larger inbox message is dead-lettered unparsed
	LeaseTTL      time.Duration // poll lease; renewed while polling
	DeadLetterTTL time.Duration
	Workflows     []string // inbox workflow filter; empty = both ack workflows
	Now           func() time.Time
	Logger        *slog.Logger
	Observer      Observer
}

func (c *Config) defaults() {
	if c.Interval <= 0 {
		c.Interval = 5 * time.Minute
	}
	if c.PageSize <= 0 {
		c.PageSize = 500
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.MaxAckBytes <= 0 {
		c.MaxAckBytes = 1 << 20 // ITK3 responses are a few KB
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2*c.Interval + time.Minute
	}
	if c.DeadLetterTTL <= 0 {
		c.DeadLetterTTL = 30 * 24 * time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Consumer == "" {
		c.Consumer = "collector"
	}
}

// Collector polls a set of mailboxes.
type Collector struct {
	cfg     Config
	rdb     redis.UniversalClient
	store   Store
	inboxes []Inbox
	dead    *DeadLetters
}

// New builds a collector for the given mailboxes.
func New(rdb redis.UniversalClient, store Store, inboxes []Inbox, cfg Config) *Collector {
	cfg.defaults()
	return &Collector{cfg: cfg, rdb: rdb, store: store, inboxes: inboxes, dead: NewDeadLetters(rdb, cfg.DeadLetterTTL)}
}

// DeadLetters gives operators the inbox messages that could not be correlated.
func (c *Collector) DeadLetters() *DeadLetters { return c.dead }

// Run polls every mailbox until ctx ends. Exactly one replica polls a given
// mailbox at a time (Redis lease); the others wait for the lease.
func (c *Collector) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, in := range c.inboxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.runMailbox(ctx, in)
		}()
	}
	wg.Wait()
	return nil
}

func (c *Collector) runMailbox(ctx context.Context, in Inbox) {
	log := c.cfg.Logger.With("mailbox", in.MailboxID())
	lease := newLease(c.rdb, "{gw}:lease:inbox:"+in.MailboxID(), c.cfg.Consumer, c.cfg.LeaseTTL)
	for {
		held, err := lease.acquire(ctx)
		if err != nil {
			log.WarnContext(ctx, "inbox lease check failed", "error", err)
		}
		wait := c.cfg.Interval
		if held {
			c.handshakeDaily(ctx, in, log)
			full, err := c.PollOnce(ctx, in)
			if err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "inbox poll failed", "error", err)
			}
			if full && err == nil {
				wait = 0 // MESH: poll again at once while the page was full
			}
		}
		select {
		case <-ctx.Done():
			lease.release(context.WithoutCancel(ctx))
			return
		case <-time.After(wait):
		}
	}
}

// handshakeDaily validates the mailbox once every 24 hours across replicas.
func (c *Collector) handshakeDaily(ctx context.Context, in Inbox, log *slog.Logger) {
	ok, err := c.rdb.SetNX(ctx, "{gw}:handshake:"+in.MailboxID(), c.cfg.Now().UTC().Format(time.RFC3339), 24*time.Hour).Result()
	if err != nil || !ok {
		return
	}
	if err := in.Handshake(ctx); err != nil {
		log.WarnContext(ctx, "MESH handshake failed", "error", err)
		c.rdb.Del(context.WithoutCancel(ctx), "{gw}:handshake:"+in.MailboxID())
	}
}

// PollOnce lists the inbox once (one page per workflow filter) and processes
// every message. It reports whether a page came back full.
func (c *Collector) PollOnce(ctx context.Context, in Inbox) (full bool, err error) {
	ctx, span := otel.Tracer("github.com/meshgateway/gateway/collector").Start(ctx, "collector.poll",
		trace.WithAttributes(attribute.String("meshgw.mailbox", in.MailboxID())))
	defer span.End()
	filters := c.cfg.Workflows
	if len(filters) == 0 {
		filters = []string{""} // reports carry the original workflow: list everything
	}
	for _, wf := range filters {
		page, err := in.Inbox(ctx, meshbridge.InboxOptions{MaxResults: c.cfg.PageSize, WorkflowFilter: wf})
		if err != nil {
			c.observe(in.MailboxID(), "error", 0)
			return false, fmt.Errorf("meshbridge.Inbox: %w", err)
		}
		c.observe(in.MailboxID(), "ok", len(page.Messages))
		if len(page.Messages) >= c.cfg.PageSize {
			full = true
		}
		if err := c.processAll(ctx, in, page.Messages); err != nil {
			return full, err
		}
	}
	return full, nil
}

func (c *Collector) observe(mailbox, outcome string, n int) {
	if c.cfg.Observer != nil {
		c.cfg.Observer.InboxPolled(mailbox, outcome, n)
	}
}

// processAll downloads up to Concurrency messages ahead in parallel but
// records them strictly in inbox order. MESH lists a practice's
// infrastructure ack before its business ack for the same message; recording
// the two concurrently let the business ack win, so the message skipped
// inf_acked and message.infack was sent after message.busack. MESH
// acknowledgements (each after its message is recorded) run in parallel.
func (c *Collector) processAll(ctx context.Context, in Inbox, ids []string) error {
	// Windows bound memory: at most window downloaded bodies are held.
	window := 2 * c.cfg.Concurrency
	var first error
	for start := 0; start < len(ids) && ctx.Err() == nil; start += window {
		if err := c.processWindow(ctx, in, ids[start:min(len(ids), start+window)]); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// processWindow downloads a run of inbox messages in parallel, then records
// them: messages answering the same sent message are recorded in inbox order
// (an infrastructure ack before the business ack that follows it), different
// sent messages in parallel. Each is acknowledged in MESH once recorded.
func (c *Collector) processWindow(ctx context.Context, in Inbox, ids []string) error {
	items := make([]*inboxItem, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, c.cfg.Concurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			items[i], errs[i] = c.fetch(ctx, in, id)
		})
	}
	wg.Wait()

	// Group by what the message answers; order within a group is inbox order.
	groups := map[string][]int{}
	var order []string
	for i, it := range items {
		key := "#" + ids[i] // unparseable or unrelated: a group of its own
		if it != nil {
			if k := orderKey(it); k != "" {
				key = k
			}
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}

	var (
		mu    sync.Mutex
		first error
	)
	fail := func(id string, err error) {
		c.cfg.Logger.WarnContext(ctx, "inbox message not processed; it stays in MESH for the next poll",
			"mailbox", in.MailboxID(), "mesh_message_id", id, "error", err)
		mu.Lock()
		if first == nil {
			first = err
		}
		mu.Unlock()
	}
	for _, key := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range groups[key] {
				if !c.recordOne(ctx, in, ids[i], items[i], errs[i], fail) {
					return // later messages of this group wait for the next poll, keeping order
				}
			}
		})
	}
	wg.Wait()
	return first
}

// recordOne records and acknowledges one downloaded message in its own span;
// false stops its group so the order within the group is kept.
func (c *Collector) recordOne(ctx context.Context, in Inbox, id string, it *inboxItem, fetchErr error, fail func(string, error)) bool {
	ctx, span := otel.Tracer("github.com/meshgateway/gateway/collector").Start(ctx, "collector.record",
		trace.WithAttributes(attribute.String("meshgw.mesh_message_id", id)))
	defer span.End()
	if fetchErr != nil {
		fail(id, fetchErr)
		return false
	}
	if err := c.file(ctx, in, id, it); err != nil {
		fail(id, err)
		return false
	}
	if err := in.Acknowledge(ctx, id); err != nil {
		fail(id, fmt.Errorf("meshbridge.Acknowledge: %w", err))
	}
	return true
}

// orderKey names the sent message an inbox message answers, without Redis:
// the original MessageHeader id of an ITK3 response, or the linked MESH id
// of a REPORT. The parsed acknowledgement is kept for recording.
func orderKey(it *inboxItem) string {
	if r, ok := itk.ParseMeshReport(it.meta.Raw); ok {
		return "mesh:" + r.LinkedMessageID
	}
	if it.overflow || !isAckWorkflow(it.meta.WorkflowID) {
		return ""
	}
	ack, err := itk.ParseAck(it.body)
	if err != nil {
		return ""
	}
	it.ack = ack
	if usableRef(ack.RespondsTo) {
		return "itk:" + ack.RespondsTo
	}
	if usableRef(ack.SenderReference) {
		return "ref:" + ack.SenderReference
	}
	return ""
}

// Process downloads one inbox message, records what it means, and then
// acknowledges it. A message is acknowledged only once its event (or its
// dead-letter record) is durably stored.
func (c *Collector) Process(ctx context.Context, in Inbox, meshID string) error {
	item, err := c.fetch(ctx, in, meshID)
	if err != nil {
		return err
	}
	if err := c.file(ctx, in, meshID, item); err != nil {
		return err
	}
	if err := in.Acknowledge(ctx, meshID); err != nil {
		return fmt.Errorf("meshbridge.Acknowledge: %w", err)
	}
	return nil
}

// inboxItem is one downloaded inbox message; body is truncated when overflow.
type inboxItem struct {
	meta     *meshbridge.MessageMetadata
	body     []byte
	overflow bool
	ack      *itk.Acknowledgement // parsed while grouping; nil if not (yet) parsed
}

// fetch downloads an inbox message, or only its headers when it is larger
// than MaxAckBytes.
func (c *Collector) fetch(ctx context.Context, in Inbox, meshID string) (*inboxItem, error) {
	var body bytes.Buffer
	lw := &limitedWriter{w: &body, n: c.cfg.MaxAckBytes}
	meta, err := in.Download(ctx, meshID, lw)
	if err != nil && !errors.Is(err, errTooLarge) {
		return nil, fmt.Errorf("meshbridge.Download: %w", err)
	}
	if meta == nil && lw.overflow {
		if meta, err = in.Head(ctx, meshID); err != nil {
			return nil, fmt.Errorf("meshbridge.Head: %w", err)
		}
	}
	if meta == nil {
		return nil, fmt.Errorf("meshbridge.Download: no metadata for %s", meshID)
	}
	return &inboxItem{meta: meta, body: body.Bytes(), overflow: lw.overflow}, nil
}

// file records what an inbox message means (or dead-letters it); after a nil
// error the message may be acknowledged in MESH.
func (c *Collector) file(ctx context.Context, in Inbox, meshID string, it *inboxItem) error {
	outcome, reason := c.record(ctx, it)
	if outcome == outcomeRetry {
		return fmt.Errorf("record %s: %s", meshID, reason)
	}
	if outcome == outcomeDeadLetter {
		if err := c.dead.Put(ctx, in.MailboxID(), it.meta, it.body, reason, c.cfg.Now()); err != nil {
			return fmt.Errorf("dead-letter %s: %w", meshID, err)
		}
		c.cfg.Logger.WarnContext(ctx, "inbox message dead-lettered", "mailbox", in.MailboxID(),
			"mesh_message_id", meshID, "workflow", it.meta.WorkflowID, "reason", reason)
	}
	return nil
}

type outcome int

const (
	outcomeRecorded outcome = iota
	outcomeDeadLetter
	outcomeRetry
)

// record turns one inbox message into an event on the message it answers.
func (c *Collector) record(ctx context.Context, it *inboxItem) (outcome, string) {
	meta := it.meta
	if report, ok := itk.ParseMeshReport(meta.Raw); ok {
		return c.recordReport(ctx, report)
	}
	if it.overflow {
		return outcomeDeadLetter, "inbox message larger than the acknowledgement limit"
	}
	if !isAckWorkflow(meta.WorkflowID) {
		return outcomeDeadLetter, "unexpected workflow " + meta.WorkflowID
	}
	ack := it.ack
	if ack == nil {
		var err error
		if ack, err = itk.ParseAck(it.body); err != nil {
			return outcomeDeadLetter, "unparseable ITK3 response: " + err.Error()
		}
	}
	ack.Timestamp = nonZero(ack.Timestamp, c.cfg.Now())
	return c.recordAck(ctx, ack, meta.MessageID)
}

func isAckWorkflow(wf string) bool {
	return strings.EqualFold(wf, itk.WorkflowSendDocumentAck) || strings.EqualFold(wf, itk.WorkflowV1ConsultReportAck)
}

func (c *Collector) recordReport(ctx context.Context, r *itk.MeshReport) (outcome, string) {
	if r.LinkedMessageID == "" {
		return outcomeDeadLetter, "REPORT without mex-LinkedMsgID"
	}
	msg, err := c.store.FindByMeshMessageID(ctx, r.LinkedMessageID)
	if errors.Is(err, tracking.ErrNotFound) {
		return outcomeDeadLetter, "REPORT for a message this gateway did not send"
	}
	if err != nil {
		return outcomeRetry, err.Error()
	}
	ev := tracking.Event{Type: tracking.EventUndeliverable, State: tracking.StateUndeliverable, At: c.cfg.Now().UTC(),
		Code: r.StatusCode, Display: r.Description, MeshMessageID: r.MessageID}
	_, err = c.store.Transition(ctx, msg.ID, undeliverableFrom, tracking.StateUndeliverable, ev, func(m *tracking.Message) {
		m.LastError = &tracking.MeshError{Event: r.StatusEvent, Code: r.StatusCode, Description: r.Description}
	})
	return c.settle(ctx, msg.ID, err, ev)
}

var (
	undeliverableFrom = []tracking.State{tracking.StateAccepted, tracking.StateSending, tracking.StateSent, tracking.StateDelivered}
	infAckFrom        = []tracking.State{tracking.StateSending, tracking.StateSent, tracking.StateDelivered}
	busAckFrom        = []tracking.State{tracking.StateSending, tracking.StateSent, tracking.StateDelivered, tracking.StateInfAcked}
)

func (c *Collector) recordAck(ctx context.Context, ack *itk.Acknowledgement, ackMeshID string) (outcome, string) {
	msg, err := c.correlate(ctx, ack)
	if errors.Is(err, tracking.ErrNotFound) {
		return outcomeDeadLetter, "ITK3 response for a message this gateway did not send"
	}
	if err != nil {
		return outcomeRetry, err.Error()
	}
	business := ack.Kind == itk.AckBusiness
	if already := msg.InfAck; !business && already != nil && already.MeshMessageID == ackMeshID {
		return outcomeRecorded, "" // recorded before a crash; only the MESH acknowledge was missing
	}
	if already := msg.BusAck; business && already != nil && already.MeshMessageID == ackMeshID {
		return outcomeRecorded, ""
	}
	now := c.cfg.Now().UTC()
	recorded := &tracking.Ack{Code: ack.Code, Display: ack.Display, Positive: ack.Positive,
		Diagnostics: strings.Join(ack.Diagnostics, "; "), ReceivedAt: ack.Timestamp.UTC(), MeshMessageID: ackMeshID}
	ev := tracking.Event{At: now, Code: ack.Code, Display: ack.Display, Diagnostics: recorded.Diagnostics, MeshMessageID: ackMeshID}
	var (
		from []tracking.State
		to   tracking.State
		set  func(*tracking.Message)
	)
	if business {
		ev.Type, from, to = tracking.EventBusAck, busAckFrom, tracking.StateBusAcked
		if !ack.Positive {
			to = tracking.StateBusNacked
		}
		set = func(m *tracking.Message) { m.BusAck = recorded; m.AckOverdue = false }
	} else {
		ev.Type, from, to = tracking.EventInfAck, infAckFrom, tracking.StateInfAcked
		if !ack.Positive {
			to = tracking.StateInfNacked
		}
		set = func(m *tracking.Message) { m.InfAck = recorded; m.AckOverdue = m.AckOverdue && m.BusAck == nil }
	}
	ev.State = to
	if c.cfg.Observer != nil && msg.SentAt != nil {
		c.cfg.Observer.AckLatency(string(ack.Kind), now.Sub(*msg.SentAt))
	}
	// An acknowledgement proves the practice collected the message, even if
	// MESH tracking has not been polled since: record "delivered" on the way,
	// in the same compare-and-set.
	if msg.State == tracking.StateSent || msg.State == tracking.StateSending {
		delivered := tracking.Event{Type: tracking.EventDelivered, State: tracking.StateDelivered, At: now,
			MeshMessageID: msg.MeshMessageID, Display: "Collected by the recipient (its acknowledgement arrived)"}
		_, err = c.store.TransitionVia(ctx, msg.ID, []tracking.State{tracking.StateSent, tracking.StateSending},
			[]tracking.Event{delivered}, to, ev, func(m *tracking.Message) {
				if m.DeliveredAt == nil {
					m.DeliveredAt = &now
				}
				set(m)
			})
		if !errors.Is(err, tracking.ErrStateConflict) {
			if err != nil {
				return outcomeRetry, err.Error()
			}
			return outcomeRecorded, ""
		}
		// The state moved meanwhile (e.g. MESH tracking said delivered): go on from it.
	}
	_, err = c.store.Transition(ctx, msg.ID, from, to, ev, set)
	if errors.Is(err, tracking.ErrStateConflict) {
		// Out of order (an infrastructure ack read after the business ack) or
		// after a failure: keep the ack and its history without moving state.
		if _, err := c.store.Update(ctx, msg.ID, func(m *tracking.Message) error { set(m); return nil }); err != nil {
			return outcomeRetry, err.Error()
		}
		if err := c.store.AddEvent(ctx, msg.ID, ev); err != nil { // at the current state
			return outcomeRetry, err.Error()
		}
		return outcomeRecorded, ""
	}
	if err != nil {
		return outcomeRetry, err.Error()
	}
	return outcomeRecorded, ""
}

// settle handles a report for a message already in another state (e.g.
// acknowledged): the report is kept in its history.
func (c *Collector) settle(ctx context.Context, id string, err error, ev tracking.Event) (outcome, string) {
	if err == nil {
		return outcomeRecorded, ""
	}
	if errors.Is(err, tracking.ErrStateConflict) {
		// AddEvent records the event at the message's current state.
		if aerr := c.store.AddEvent(ctx, id, ev); aerr != nil {
			return outcomeRetry, aerr.Error()
		}
		return outcomeRecorded, ""
	}
	return outcomeRetry, err.Error()
}

// correlate finds the sent message an ITK3 response answers: first by the
// original MessageHeader id (response.identifier), then by SenderReference.
func (c *Collector) correlate(ctx context.Context, ack *itk.Acknowledgement) (*tracking.Message, error) {
	for _, ref := range []string{ack.RespondsTo, ack.SenderReference} {
		if !usableRef(ref) {
			continue
		}
		m, err := c.store.FindByITK(ctx, ref)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, tracking.ErrNotFound) {
			return nil, err
		}
	}
	return nil, tracking.ErrNotFound
}

// usableRef reports whether an ITK3 response reference can name a sent
// message (it is neither missing nor ITK3's "unreadable" placeholder).
func usableRef(ref string) bool { return ref != "" && ref != itk.UnreadableInOriginal }

func nonZero(t, fallback time.Time) time.Time {
	if t.IsZero() {
		return fallback
	}
	return t
}

var errTooLarge = errors.New("inbox message exceeds the acknowledgement size limit")

// limitedWriter keeps at most n bytes and then fails the download.
type limitedWriter struct {
	w        io.Writer
	n        int64
	overflow bool
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if int64(len(p)) > l.n {
		l.overflow = true
		return 0, errTooLarge
	}
	l.n -= int64(len(p))
	return l.w.Write(p)
}
