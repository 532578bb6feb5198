package tracking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// Errors returned by the Store. Callers branch on them with errors.Is.
var (
	ErrNotFound            = errors.New("tracking: message not found")
	ErrIdempotencyConflict = errors.New("tracking: idempotency key reused with a different request")
	ErrStateConflict       = errors.New("tracking: message is not in an expected state")
	ErrDuplicateID         = errors.New("tracking: message id already exists")
	ErrPayloadGone         = errors.New("tracking: payload no longer stored")
	ErrInvalidCursor       = errors.New("tracking: invalid list cursor")
	ErrContention          = errors.New("tracking: too many concurrent updates")
)

// Key layout. Every key carries the {gw} hash tag so that all of them live in
// one Redis Cluster slot and a MULTI may touch any of them.
//
//	{gw}:msg:<id>                   string  record JSON (TTL = retention, refreshed on each write)
//	{gw}:payload:<id>               string  document bytes (APPENDed; deleted once sent/terminal)
//	{gw}:upload:<uuid>              string  document being uploaded (renamed at commit; 6 h TTL)
//	{gw}:idem:<clientId>:<sha256>   string  Idempotency-Key → message id
//	{gw}:client:<clientId>:msgs     zset    message ids scored by createdAt (unix ms)
//	{gw}:meshid:<meshMessageId>     string  → message id
//	{gw}:itk:<ref>                  string  MessageHeader id / Bundle identifier / sender reference → message id
//	{gw}:outbox, {gw}:events        streams (below)
//	{gw}:outbox:delayed, {gw}:track:due  zsets (below)
//	{gw}:lock:<id>                  string  outbox worker's per-message lease
const (
	keyPrefix      = "{gw}:"
	OutboxStream   = keyPrefix + "outbox"         // stream: messageId, mailbox (consumer group "senders")
	EventsStream   = keyPrefix + "events"         // stream: the event bus (see eventFields)
	OutboxDelayed  = keyPrefix + "outbox:delayed" // zset: messageId scored by retry time (unix ms)
	TrackDue       = keyPrefix + "track:due"      // zset: messageId scored by next MESH tracking poll (unix ms)
	eventsMaxLen   = 1_000_000
	defaultTTL     = 30 * 24 * time.Hour
	defaultChunk   = 1 << 20
	uploadTTL      = 6 * time.Hour // an interrupted upload is removed by Redis after this
	maxCASAttempts = 64
)

func msgKey(id string) string     { return keyPrefix + "msg:" + id }
func payloadKey(id string) string { return keyPrefix + "payload:" + id }
func uploadKey(tmp string) string { return keyPrefix + "upload:" + tmp }
func meshKey(meshID string) string {
	return keyPrefix + "meshid:" + meshID
}
func itkKey(ref string) string         { return keyPrefix + "itk:" + ref }
func clientKey(clientID string) string { return keyPrefix + "client:" + clientID + ":msgs" }

// idemKey scopes an Idempotency-Key to its client. The key is hashed so any
// client-chosen text makes a bounded, unambiguous Redis key.
func idemKey(clientID, key string) string {
	sum := sha256.Sum256([]byte(key))
	return keyPrefix + "idem:" + clientID + ":" + hex.EncodeToString(sum[:])
}

// StoreOptions configures a Store. Zero values take the defaults.
type StoreOptions struct {
	TTL          time.Duration // retention of a record after its last change; default 30 days
	Now          func() time.Time
	PayloadChunk int // bytes per APPEND / GETRANGE; default 1 MiB
	// KeepPayload keeps the document after MESH accepted it. By default it is
	// deleted once the message is sent or terminal: MESH holds it from then on
	// and the gateway should not keep patient data longer than it needs to.
	KeepPayload bool
}

// Store is the Redis-backed tracking store. It is safe for concurrent use
// by any number of goroutines and replicas.
type Store struct {
	rdb   redis.UniversalClient
	ttl   time.Duration
	now   func() time.Time
	chunk int
	keep  bool
	bufs  sync.Pool // *[]byte of chunk bytes: upload buffers reused across requests
}

// NewStore builds a Store on rdb (a single node, Sentinel or Cluster client).
func NewStore(rdb redis.UniversalClient, opts StoreOptions) *Store {
	s := &Store{rdb: rdb, ttl: opts.TTL, now: opts.Now, chunk: opts.PayloadChunk, keep: opts.KeepPayload}
	if s.ttl <= 0 {
		s.ttl = defaultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.chunk <= 0 {
		s.chunk = defaultChunk
	}
	s.bufs.New = func() any { b := make([]byte, s.chunk); return &b }
	return s
}

// TTL is the retention applied to every record.
func (s *Store) TTL() time.Duration { return s.ttl }

// storedMessage adds the fields the API never shows to the stored JSON.
type storedMessage struct {
	*Message
	IdemKey string `json:"idempotencyKey,omitempty"`
	ReqHash string `json:"requestHash,omitempty"`
}

func encodeMessage(m *Message) ([]byte, error) {
	b, err := json.Marshal(storedMessage{Message: m, IdemKey: m.IdempotencyKey, ReqHash: m.RequestHash})
	if err != nil {
		return nil, fmt.Errorf("tracking: encode record: %w", err)
	}
	return b, nil
}

func decodeMessage(b []byte) (*Message, error) {
	sm := storedMessage{Message: &Message{}}
	if err := json.Unmarshal(b, &sm); err != nil {
		return nil, fmt.Errorf("tracking: decode record: %w", err)
	}
	sm.Message.IdempotencyKey, sm.Message.RequestHash = sm.IdemKey, sm.ReqHash
	sm.Message.stored = b
	return sm.Message, nil
}

// Accept stores a new message and queues it for MESH. The payload is streamed
// into Redis in PayloadChunk pieces, then one MULTI writes the idempotency
// key, the record, the client index, the outbox entry and the 'accepted'
// event. A repeat of the same Idempotency-Key with the same RequestHash
// returns the first record with created=false; a different hash is
// ErrIdempotencyConflict. The write is acknowledged by Redis before return.
func (s *Store) Accept(ctx context.Context, msg *Message, payload io.Reader) (*Message, bool, error) {
	if msg == nil || msg.ClientID == "" {
		return nil, false, errors.New("tracking: accept: ClientID is required")
	}
	m := *msg
	m.Events = nil
	if m.ID == "" {
		m.ID = uuid.NewString()
	}
	if m.IdempotencyKey == "" {
		// Fast path for the common case: a document that fits one piece and
		// no idempotency key is written in a single MULTI/EXEC round trip.
		rec, rest, err := s.acceptSmall(ctx, &m, msg, payload)
		if rec != nil || err != nil {
			return rec, rec != nil, err
		}
		payload = rest
	}
	tmp := uploadKey(uuid.NewString())
	size, err := s.upload(ctx, tmp, payload)
	if err != nil {
		s.rdb.Del(context.WithoutCancel(ctx), tmp)
		return nil, false, err
	}
	now := s.stampAccepted(&m, msg, size)

	var (
		existing *Message
		ikey     string
	)
	keys := []string{msgKey(m.ID)}
	if m.IdempotencyKey != "" {
		ikey = idemKey(m.ClientID, m.IdempotencyKey)
		keys = append(keys, ikey)
	}
	txf := func(tx *redis.Tx) error {
		existing = nil
		if ikey != "" {
			prevID, err := tx.Get(ctx, ikey).Result()
			switch {
			case err == nil:
				prev, err := getWith(ctx, tx, prevID)
				if err == nil {
					existing = prev
					return nil
				}
				if !errors.Is(err, ErrNotFound) {
					return err
				}
			case !errors.Is(err, redis.Nil):
				return fmt.Errorf("tracking: read idempotency key: %w", err)
			}
		}
		n, err := tx.Exists(ctx, msgKey(m.ID)).Result()
		if err != nil {
			return fmt.Errorf("tracking: check id: %w", err)
		}
		if n > 0 {
			return ErrDuplicateID
		}
		data, err := encodeMessage(&m)
		if err != nil {
			return err
		}
		m.stored = data
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if ikey != "" {
				p.Set(ctx, ikey, m.ID, s.ttl)
			}
			p.Rename(ctx, tmp, payloadKey(m.ID))
			p.Expire(ctx, payloadKey(m.ID), s.ttl)
			var w writes
			s.queueAcceptWrites(&w, &m, data, now)
			w.queue(ctx, p)
			return nil
		})
		return err
	}
	if err := s.watchRetry(ctx, txf, keys...); err != nil && !s.landed(ctx, m.ID, err) {
		s.rdb.Del(context.WithoutCancel(ctx), tmp)
		return nil, false, fmt.Errorf("tracking: accept: %w", err)
	}
	if existing != nil {
		s.rdb.Del(context.WithoutCancel(ctx), tmp)
		if existing.RequestHash != m.RequestHash {
			return nil, false, ErrIdempotencyConflict
		}
		return existing, false, nil
	}
	return &m, true, nil
}

// acceptSmall stores a message whose payload fits one PayloadChunk piece
// with one MULTI (no temporary key, no WATCH: there is no idempotency key to
// compare, and a caller-chosen id is checked first; ids are random UUIDs). For a larger payload it returns
// a reader that yields the whole payload again for the streaming path.
func (s *Store) acceptSmall(ctx context.Context, m, msg *Message, payload io.Reader) (*Message, io.Reader, error) {
	if payload == nil {
		payload = eofReader{}
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	n, rerr := io.ReadFull(payload, buf)
	switch {
	case rerr == nil: // more to come: hand the first piece back in front of the rest
		first := append([]byte(nil), buf[:n]...)
		return nil, io.MultiReader(bytes.NewReader(first), payload), nil
	case rerr != io.EOF && rerr != io.ErrUnexpectedEOF: // ReadFull's own sentinels only (see upload)
		return nil, nil, fmt.Errorf("tracking: read payload: %w", rerr)
	}
	now := s.stampAccepted(m, msg, int64(n))
	if msg.ID != "" { // a caller-chosen id must not overwrite another message
		exists, err := s.rdb.Exists(ctx, msgKey(m.ID)).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("tracking: check id: %w", err)
		}
		if exists > 0 {
			return nil, nil, fmt.Errorf("tracking: accept: %w", ErrDuplicateID)
		}
	}
	data, err := encodeMessage(m)
	if err != nil {
		return nil, nil, err
	}
	m.stored = data
	var w writes
	w.set(payloadKey(m.ID), buf[:n], s.ttl)
	s.queueAcceptWrites(&w, m, data, now)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		w.queue(ctx, p)
		return nil
	})
	if err != nil && !s.landed(ctx, m.ID, err) {
		return nil, nil, fmt.Errorf("tracking: accept: %w", err)
	}
	return m, nil, nil
}

// stampAccepted fills in what Accept records once the payload is stored:
// its size, the request hash, the 'accepted' state and event. The caller may
// finish hashing a streamed request only as the payload ends (multipart
// uploads), so the hash is taken from msg now. It returns the time used.
func (s *Store) stampAccepted(m, msg *Message, size int64) time.Time {
	now := s.now().UTC()
	m.PayloadSize = size
	m.RequestHash = msg.RequestHash
	m.State = StateAccepted
	if m.CreatedAt.IsZero() {
		m.CreatedAt = now
	}
	m.UpdatedAt = now
	m.Events = []Event{{Type: EventAccepted, State: StateAccepted, At: now}}
	return now
}

// landed reports whether the write of message id went through although its
// transaction failed with err: when the connection broke after Redis
// received EXEC (a lost reply, a timeout), the message may be stored, and
// telling the caller "not accepted" would make it send the document again.
// A Redis error reply means EXEC did not apply.
func (s *Store) landed(ctx context.Context, id string, err error) bool {
	var serverErr redis.Error
	if errors.As(err, &serverErr) || errors.Is(err, ErrDuplicateID) || errors.Is(err, ErrContention) {
		return false
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	n, xerr := s.rdb.Exists(cctx, msgKey(id)).Result()
	return xerr == nil && n == 1
}

// queueAcceptWrites queues everything Accept writes besides the payload:
// the record, the client index, lookup indexes, the state index, the outbox
// entry and the 'accepted' event.
func (s *Store) queueAcceptWrites(w *writes, m *Message, data []byte, now time.Time) {
	w.set(msgKey(m.ID), data, s.ttl)
	ck := clientKey(m.ClientID)
	w.zadd(ck, m.CreatedAt.UnixMilli(), m.ID)
	w.do("ZREMRANGEBYSCORE", ck, "-inf", "("+strconv.FormatInt(now.Add(-s.ttl).UnixMilli(), 10))
	s.queueIndexes(w, m) // also refreshes the client index's TTL
	w.zadd(stateKey(StateAccepted), now.UnixMilli(), m.ID)
	w.do("XADD", OutboxStream, "*", "messageId", m.ID, "mailbox", m.Mailbox)
	s.queueEvent(w, m, 0)
}

// watchRetry runs txf under WATCH keys, repeating it when another client
// changed a watched key first.
func (s *Store) watchRetry(ctx context.Context, txf func(*redis.Tx) error, keys ...string) error {
	for i := 0; i < maxCASAttempts; i++ {
		err := s.rdb.Watch(ctx, txf, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		// Back off a little so a hot record does not starve a writer.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * time.Millisecond):
		}
	}
	return ErrContention
}

// queueIndexes (re)writes every lookup key of m with the record's TTL.
func (s *Store) queueIndexes(w *writes, m *Message) {
	if m.MeshMessageID != "" {
		w.set(meshKey(m.MeshMessageID), m.ID, s.ttl)
	}
	for _, ref := range []string{m.MessageHeaderID, m.BundleID, m.SenderReference} {
		if ref != "" {
			w.set(itkKey(ref), m.ID, s.ttl)
		}
	}
	if m.IdempotencyKey != "" {
		w.expire(idemKey(m.ClientID, m.IdempotencyKey), s.ttl)
	}
	w.expire(clientKey(m.ClientID), s.ttl)
}

// queueEvent publishes history entry seq of m on the event bus. The fields
// are a contract with other packages: ids, state and codes only.
func (s *Store) queueEvent(w *writes, m *Message, seq int) {
	ev := m.Events[seq]
	mesh := ev.MeshMessageID
	if mesh == "" {
		mesh = m.MeshMessageID
	}
	w.do("XADD", EventsStream, "MAXLEN", "~", eventsMaxLen, "*",
		"eventId", EventID(m.ID, seq),
		"messageId", m.ID,
		"clientId", m.ClientID,
		"type", string(ev.Type),
		"state", string(ev.State),
		"code", ev.Code,
		"display", ev.Display,
		"meshMessageId", mesh,
		"at", ev.At.UTC().Format(time.RFC3339Nano),
	)
}

// EventID is the stable id of history entry seq of a message.
func EventID(messageID string, seq int) string { return messageID + ":" + strconv.Itoa(seq) }

// Get returns the record of message id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, id string) (*Message, error) {
	return getWith(ctx, s.rdb, id)
}

// QueueGet adds a read of message id to pipeline p, so a caller can fetch
// the record in the same round trip as its own commands; the returned
// function gives the record (or ErrNotFound) once p has run.
func (s *Store) QueueGet(ctx context.Context, p redis.Pipeliner, id string) func() (*Message, error) {
	cmd := p.Get(ctx, msgKey(id))
	return func() (*Message, error) { return recordOf(cmd) }
}

func getWith(ctx context.Context, c redis.Cmdable, id string) (*Message, error) {
	return recordOf(c.Get(ctx, msgKey(id)))
}

// recordOf decodes the answer to a GET of a record key.
func recordOf(cmd *redis.StringCmd) (*Message, error) {
	b, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("tracking: get: %w", err)
	}
	return decodeMessage(b)
}

// Transition moves message id from one of the states in from (any state when
// from is empty) to state to, applying mutate and appending ev to its
// history. It is a compare-and-set: ErrStateConflict when the current state
// is not in from. The event is published in the same transaction.
func (s *Store) Transition(ctx context.Context, id string, from []State, to State, ev Event, mutate func(*Message)) (*Message, error) {
	return s.TransitionVia(ctx, id, from, nil, to, ev, mutate)
}

// TransitionVia is Transition with intermediate states recorded on the way
// in the same compare-and-set: each of via is appended (and published)
// before ev, e.g. "delivered" when an acknowledgement proves delivery.
func (s *Store) TransitionVia(ctx context.Context, id string, from []State, via []Event, to State, ev Event, mutate func(*Message)) (*Message, error) {
	return s.modify(ctx, id, nil, transitionChange(id, from, via, to, ev, mutate))
}

// TransitionFrom is Transition for rec as the caller last read or wrote it
// (from Get or an earlier change): its stored form is the compare-and-set's
// expected value, which saves a read when nobody else changed it since.
func (s *Store) TransitionFrom(ctx context.Context, rec *Message, from []State, to State, ev Event, mutate func(*Message)) (*Message, error) {
	return s.modify(ctx, rec.ID, rec.stored, transitionChange(rec.ID, from, nil, to, ev, mutate))
}

// TransitionFromIf is TransitionFrom that also requires cond to hold for the
// stored record (ErrStateConflict otherwise): for a precondition the state
// alone does not show.
func (s *Store) TransitionFromIf(ctx context.Context, rec *Message, from []State, cond func(*Message) bool, to State, ev Event, mutate func(*Message)) (*Message, error) {
	change := transitionChange(rec.ID, from, nil, to, ev, mutate)
	return s.modify(ctx, rec.ID, rec.stored, func(m *Message) ([]Event, error) {
		if cond != nil && !cond(m) {
			return nil, fmt.Errorf("%w: %s no longer meets the precondition", ErrStateConflict, rec.ID)
		}
		return change(m)
	})
}

func transitionChange(id string, from []State, via []Event, to State, ev Event, mutate func(*Message)) func(*Message) ([]Event, error) {
	return func(m *Message) ([]Event, error) {
		if len(from) > 0 && !slices.Contains(from, m.State) {
			return nil, fmt.Errorf("%w: %s is %s, want one of %v", ErrStateConflict, id, m.State, from)
		}
		if mutate != nil {
			mutate(m)
		}
		m.State = to
		ev.State = to
		return append(append([]Event(nil), via...), ev), nil
	}
}

// Update applies mutate to message id without a state change or event
// (recording the MESH id, attempt counters). mutate may run more than once
// when another writer races; an error from it aborts the update.
func (s *Store) Update(ctx context.Context, id string, mutate func(*Message) error) (*Message, error) {
	return s.modify(ctx, id, nil, func(m *Message) ([]Event, error) {
		state := m.State
		if err := mutate(m); err != nil {
			return nil, err
		}
		if m.State != state {
			return nil, errors.New("tracking: Update must not change the state (use Transition)")
		}
		return nil, nil
	})
}

// AddEvent appends ev to the history of message id without a state change
// and publishes it.
func (s *Store) AddEvent(ctx context.Context, id string, ev Event) error {
	_, err := s.RecordEvent(ctx, id, ev, func(*Message) bool { return true })
	return err
}

// errNoChange ends a change that decided to leave the record alone.
var errNoChange = errors.New("tracking: no change")

// RecordEvent appends ev to the history of message id, without a state
// change, in the same compare-and-set as apply's change to the record, so
// readers never see one without the other. apply runs on the current record
// (more than once if another writer races); returning false leaves the
// record alone and RecordEvent reports false.
func (s *Store) RecordEvent(ctx context.Context, id string, ev Event, apply func(*Message) bool) (bool, error) {
	state := State("")
	_, err := s.modify(ctx, id, nil, func(m *Message) ([]Event, error) {
		state = m.State
		if !apply(m) {
			return nil, errNoChange
		}
		if m.State != state {
			return nil, errors.New("tracking: RecordEvent must not change the state (use Transition)")
		}
		ev.State = m.State
		return []Event{ev}, nil
	})
	if errors.Is(err, errNoChange) {
		return false, nil
	}
	return err == nil, err
}

// modify is the compare-and-set loop behind Transition, Update and AddEvent.
// change works on a fresh copy of the record each attempt. One GET and one
// script call per attempt: the script applies the writes only if the record
// is still the one read, and hands back the newer record if not.
// raw, when known, is the record as the caller last saw it; nil reads it.
func (s *Store) modify(ctx context.Context, id string, raw []byte, change func(*Message) ([]Event, error)) (*Message, error) {
	key := msgKey(id)
	if raw == nil {
		var err error
		raw, err = s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("tracking: update %s: get: %w", id, err)
		}
	}
	for attempt := 0; ; attempt++ {
		if raw == nil { // gone between attempts (expired)
			return nil, ErrNotFound
		}
		m, err := decodeMessage(raw)
		if err != nil {
			return nil, err
		}
		w, err := s.changeWrites(m, change)
		if err != nil {
			return nil, err
		}
		res, err := casApply(ctx, s.rdb, key, raw, w)
		if err != nil {
			return nil, fmt.Errorf("tracking: update %s: %w", id, err)
		}
		if res.applied {
			return m, nil
		}
		if res.current != nil && bytes.Equal(res.current, m.stored) {
			// Our own write: its reply was lost and go-redis ran the script
			// again, which found the change already made (the record holds a
			// nanosecond UpdatedAt, so no other write can be byte-equal).
			return m, nil
		}
		if attempt+1 >= maxCASAttempts {
			return nil, fmt.Errorf("tracking: update %s: %w", id, ErrContention)
		}
		// Another writer won: start again from what it wrote.
		raw = res.current
		if attempt > 0 { // a hot record: back off a little so no writer starves
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
	}
}

// changeWrites applies change to m and lists the writes that store it:
// the record, its indexes, the state index, the payload's fate and the
// new events.
func (s *Store) changeWrites(m *Message, change func(*Message) ([]Event, error)) (*writes, error) {
	id := m.ID
	prevState := m.State
	evs, err := change(m)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	m.UpdatedAt = now
	firstSeq := len(m.Events)
	for _, ev := range evs {
		if ev.At.IsZero() {
			ev.At = now
		}
		if ev.MeshMessageID == "" {
			ev.MeshMessageID = m.MeshMessageID
		}
		m.Events = append(m.Events, ev)
	}
	data, err := encodeMessage(m)
	if err != nil {
		return nil, err
	}
	m.stored = data
	w := &writes{}
	w.set(msgKey(id), data, s.ttl)
	s.queueIndexes(w, m)
	if m.State != prevState {
		w.do("ZREM", stateKey(prevState), id)
		w.zadd(stateKey(m.State), now.UnixMilli(), id)
	}
	// Once MESH has the document (or never will) the copy here is only risk.
	if !s.keep && m.State != StateAccepted && m.State != StateSending {
		w.do("DEL", payloadKey(id))
	} else {
		w.expire(payloadKey(id), s.ttl)
	}
	for seq := firstSeq; seq < len(m.Events); seq++ {
		s.queueEvent(w, m, seq)
	}
	return w, nil
}

// FindByMeshMessageID returns the message MESH knows by meshID (REPORT and
// tracking correlation), or ErrNotFound.
func (s *Store) FindByMeshMessageID(ctx context.Context, meshID string) (*Message, error) {
	return s.findBy(ctx, meshKey(meshID))
}

// FindByITK returns the message whose MessageHeader id, Bundle identifier or
// sender reference is ref (ITK3 acknowledgement correlation), or ErrNotFound.
func (s *Store) FindByITK(ctx context.Context, ref string) (*Message, error) {
	return s.findBy(ctx, itkKey(ref))
}

func (s *Store) findBy(ctx context.Context, key string) (*Message, error) {
	id, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("tracking: lookup: %w", err)
	}
	return s.Get(ctx, id)
}
