// Package outbox sends accepted messages to MESH. Work arrives on the Redis
// stream {gw}:outbox (written by tracking.Store.Accept); delivery is
// at-least-once, so every step is idempotent per gateway message id and the
// tracking record says how far a message got.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/meshgateway/gateway/internal/redisconn"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// Group is the consumer group of the outbox stream.
const Group = "senders"

// MeshSender is the part of *meshbridge.Client the worker uses.
type MeshSender interface {
	Send(ctx context.Context, opts meshbridge.SendOptions, body io.Reader, size int64) (meshbridge.SendResult, error)
	ContinueSend(ctx context.Context, messageID string, fromChunk int, body io.Reader, size int64, opts meshbridge.SendOptions) (meshbridge.SendResult, error)
	Track(ctx context.Context, messageID string) (*meshbridge.Tracking, error)
	// Gzips says whether a message of size bytes would go gzipped; it is
	// recorded before chunk 1 and passed back on every send and resume.
	Gzips(size int64) bool
}

// *meshbridge.Client is the production MeshSender.
var _ MeshSender = (*meshbridge.Client)(nil)

// Senders finds the MESH client of a sending mailbox.
type Senders interface {
	ForMailbox(mailboxID string) (MeshSender, bool)
}

// MailboxSenders is a fixed Senders keyed by upper-case MESH mailbox id
// (MESH ids are case-insensitive; meshbridge upper-cases them too).
type MailboxSenders map[string]MeshSender

// ForMailbox implements Senders.
func (m MailboxSenders) ForMailbox(mailboxID string) (MeshSender, bool) {
	s, ok := m[strings.ToUpper(mailboxID)]
	return s, ok
}

// Config tunes a Worker. Zero values take the defaults noted.
type Config struct {
	Consumer    string        // replica id, unique per running replica; default a random id
	Concurrency int           // messages handled at once by this replica; default 4
	PerMailbox  int           // concurrent sends per MESH mailbox per replica; default 2
	ClaimIdle   time.Duration // a pending entry idle this long belongs to a dead replica; default 2m
	Backoff     []time.Duration
	MaxAttempts int // send attempts before the message is failed; default 10
	// TrackSchedule holds the gaps between MESH tracking polls after a send.
	// MESH asks senders not to poll tracking often; the default thins out
	// from 2 minutes to daily and stops after about 5 days (when MESH itself
	// reports an uncollected message, code 14).
	TrackSchedule []time.Duration
	ChunkSize     int64 // uncompressed bytes per MESH chunk; default 20 MiB (the NHS client default)
	// MailboxChunkSize overrides ChunkSize for a sending mailbox (MESH id,
	// any case → uncompressed bytes per chunk: the registry's chunkSize).
	// A mailbox absent or 0 uses ChunkSize.
	MailboxChunkSize map[string]int64
	// MailboxPerMailbox overrides PerMailbox for a sending mailbox (MESH id,
	// any case → concurrent sends: the registry's maxConcurrentSends). A
	// mailbox absent or 0 uses PerMailbox.
	MailboxPerMailbox map[string]int
	// SendMemory bounds the chunk buffers of concurrent multi-chunk sends
	// (each holds about two chunks); default 256 MiB. Without it a burst of
	// large documents could take the replica past its memory limit, and a
	// replica killed for memory would take the same sends up again at restart.
	SendMemory   int64
	PollInterval time.Duration // how often due retries, tracking polls and idle entries are looked for; default 1s
	// DrainTimeout is how long sends in flight when Run's context ends may
	// take to finish; default 20s. Cutting a send off mid-request leaves
	// MESH's answer unknown, and the next owner sends it again.
	DrainTimeout time.Duration
	Now          func() time.Time
	Logger       *slog.Logger
}

// DefaultBackoff is the retry schedule for transient MESH failures; the
// last step repeats. Jitter of ±20% is applied.
var DefaultBackoff = []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 5 * time.Minute,
	10 * time.Minute, 30 * time.Minute, time.Hour}

// DefaultTrackSchedule is the gap before each MESH tracking poll.
var DefaultTrackSchedule = []time.Duration{2 * time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 12 * time.Hour, 24 * time.Hour, 24 * time.Hour,
	24 * time.Hour, 24 * time.Hour}

func (c Config) withDefaults() Config {
	if c.Consumer == "" {
		c.Consumer = "gw-" + uuid.NewString()
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.PerMailbox <= 0 {
		c.PerMailbox = 2
	}
	if c.ClaimIdle <= 0 {
		c.ClaimIdle = 2 * time.Minute
	}
	if len(c.Backoff) == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
	if len(c.TrackSchedule) == 0 {
		c.TrackSchedule = DefaultTrackSchedule
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 20 << 20
	}
	perMailbox := make(map[string]int64, len(c.MailboxChunkSize))
	for id, cs := range c.MailboxChunkSize {
		if cs > 0 {
			perMailbox[strings.ToUpper(id)] = cs
		}
	}
	c.MailboxChunkSize = perMailbox
	sends := make(map[string]int, len(c.MailboxPerMailbox))
	for id, n := range c.MailboxPerMailbox {
		if n > 0 {
			sends[strings.ToUpper(id)] = n
		}
	}
	c.MailboxPerMailbox = sends
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 20 * time.Second
	}
	if c.SendMemory <= 0 {
		c.SendMemory = 256 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Worker consumes the outbox stream and polls MESH tracking.
type Worker struct {
	store   *tracking.Store
	rdb     redis.UniversalClient
	senders Senders
	cfg     Config
	log     *slog.Logger

	moveDue    *redis.Script // delayed retry → stream, claimed by ZREM
	leaseTrack *redis.Script // lease a due tracking poll
	refresh    *redis.Script // extend a message lock we own
	unlock     *redis.Script // release a message lock we own
	takeover   *redis.Script // take a lock left by an earlier run of this consumer
	runID      string        // this process's run of the consumer

	mu        sync.Mutex
	mailboxes map[string]chan struct{}
	sendMem   *semaphore.Weighted // bytes of chunk buffers for multi-chunk sends
}

// NewWorker builds a Worker; Run starts it.
func NewWorker(store *tracking.Store, rdb redis.UniversalClient, senders Senders, cfg Config) *Worker {
	cfg = cfg.withDefaults()
	return &Worker{
		store: store, rdb: rdb, senders: senders, cfg: cfg,
		log: cfg.Logger.With(slog.String("component", "outbox"), slog.String("consumer", cfg.Consumer)),
		moveDue: redis.NewScript(`if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'messageId', ARGV[1], 'retry', '1')
  return 1
end
return 0`),
		leaseTrack: redis.NewScript(`local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) <= tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0`),
		refresh: redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`),
		unlock: redis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`),
		takeover: redis.NewScript(`local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] and string.sub(v, 1, #ARGV[2]) ~= ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0`),
		runID:     uuid.NewString(),
		mailboxes: make(map[string]chan struct{}),
		sendMem:   semaphore.NewWeighted(cfg.SendMemory),
	}
}

func lockKey(id string) string { return "{gw}:lock:" + id }

// Run works until ctx is done. Then it takes no new work and gives the
// sends in flight DrainTimeout to finish; one still running after that is
// abandoned, its stream entry stays pending and is taken up again (by this
// consumer on restart, or by another replica after ClaimIdle).
func (w *Worker) Run(ctx context.Context) error {
	if err := redisconn.EnsureGroup(ctx, w.rdb, tracking.OutboxStream, Group); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	drained := make(chan struct{})
	go func() {
		select {
		case <-drained:
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(w.cfg.DrainTimeout)
		defer t.Stop()
		select {
		case <-drained:
		case <-t.C:
			w.log.Warn("sends still running at the end of the drain time were cut off; they will be sent again")
			cancelSends()
		}
	}()
	var loops, sends sync.WaitGroup
	loops.Go(func() { w.every(ctx, w.moveDueRetries) })
	// Tracking polls get their own loop so a slow MESH answer never delays
	// re-queued retries.
	loops.Go(func() { w.every(ctx, w.pollTracking) })
	w.dispatch(ctx, sendCtx, &sends)
	sends.Wait()
	close(drained)
	loops.Wait()
	return nil
}

// dispatch hands stream entries to at most Concurrency handlers, until ctx
// ends; the handlers work under sendCtx, which outlives it by the drain
// time. An entry is read only when a handler is free, so nothing waits
// unclaimed in memory.
func (w *Worker) dispatch(ctx, sendCtx context.Context, wg *sync.WaitGroup) {
	slots := make(chan struct{}, w.cfg.Concurrency)
	src := &entrySource{w: w, pendingFrom: "0", claimFrom: "0-0"}
	for {
		select {
		case <-ctx.Done():
			return
		case slots <- struct{}{}:
		}
		msg, err := src.next(ctx)
		if err != nil || msg == nil {
			<-slots
			if err != nil && ctx.Err() == nil {
				w.log.WarnContext(ctx, "outbox read failed", slog.String("error", err.Error()))
				sleepCtx(ctx, w.cfg.PollInterval)
			}
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			w.handle(sendCtx, *msg)
		})
	}
}

// entrySource yields, in order: this consumer's own pending entries (left by
// a previous run), entries idle past ClaimIdle in other consumers, and new ones.
type entrySource struct {
	w           *Worker
	pendingFrom string // "" once own pending entries are exhausted
	claimFrom   string
	lastClaim   time.Time
}

func (s *entrySource) next(ctx context.Context) (*redis.XMessage, error) {
	w := s.w
	if s.pendingFrom != "" {
		msg, err := w.read(ctx, s.pendingFrom, -1)
		if err != nil {
			return nil, err
		}
		if msg != nil {
			s.pendingFrom = msg.ID
			return msg, nil
		}
		s.pendingFrom = ""
	}
	if time.Since(s.lastClaim) >= w.cfg.PollInterval {
		msgs, start, err := w.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: tracking.OutboxStream, Group: Group, Consumer: w.cfg.Consumer,
			MinIdle: w.cfg.ClaimIdle, Start: s.claimFrom, Count: 1,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("outbox: XAUTOCLAIM: %w", err)
		}
		s.claimFrom = start
		if start == "0-0" || start == "" {
			s.claimFrom, s.lastClaim = "0-0", time.Now()
		}
		if len(msgs) > 0 {
			w.log.InfoContext(ctx, "outbox entry reclaimed from an idle consumer", slog.String("entry", msgs[0].ID))
			return &msgs[0], nil
		}
	}
	return w.read(ctx, ">", w.cfg.PollInterval)
}

// read does one XREADGROUP of at most one entry; block < 0 means no BLOCK.
func (w *Worker) read(ctx context.Context, from string, block time.Duration) (*redis.XMessage, error) {
	res, err := w.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: w.cfg.Consumer, Streams: []string{tracking.OutboxStream, from},
		Count: 1, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("outbox: XREADGROUP: %w", err)
	}
	for _, st := range res {
		if len(st.Messages) > 0 {
			return &st.Messages[0], nil
		}
	}
	return nil, nil
}

// handle processes one stream entry while holding the message lock and
// keeping the entry's claim fresh.
func (w *Worker) handle(ctx context.Context, entry redis.XMessage) {
	id, _ := entry.Values["messageId"].(string)
	if id == "" {
		w.ack(ctx, entry.ID)
		return
	}
	// One span per send: the MESH calls and log lines of this message share
	// its trace id.
	ctx, span := otel.Tracer("github.com/meshgateway/gateway/outbox").Start(ctx, "outbox.send",
		trace.WithAttributes(attribute.String("meshgw.message_id", id)))
	defer span.End()
	// The token names the consumer and this run of it, so a restarted
	// replica (same consumer name) can take over the locks its killed
	// predecessor left instead of waiting for them to expire.
	consumerPrefix := w.cfg.Consumer + "|"
	runPrefix := consumerPrefix + w.runID + "|"
	token := runPrefix + uuid.NewString()
	// The lock and the record in one round trip: SET NX runs first, so the
	// record read is the one this lock holder will change.
	var (
		lock   *redis.BoolCmd
		getRec func() (*tracking.Message, error)
	)
	_, _ = w.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		lock = p.SetNX(ctx, lockKey(id), token, w.cfg.ClaimIdle)
		getRec = w.store.QueueGet(ctx, p, id)
		return nil
	}) // each command's own result is checked below
	ok, err := lock.Result()
	rec, recErr := getRec()
	if err == nil && !ok {
		var n int
		n, err = w.takeover.Run(ctx, w.rdb, []string{lockKey(id)}, consumerPrefix, runPrefix, token, w.cfg.ClaimIdle.Milliseconds()).Int()
		ok = n == 1
		if ok {
			w.log.InfoContext(ctx, "took over a send lock left by an earlier run of this replica", slog.String("message_id", id))
			rec, recErr = w.store.Get(ctx, id) // read under the lock
		}
	}
	if err != nil {
		w.log.WarnContext(ctx, "outbox lock failed", slog.String("message_id", id), slog.String("error", err.Error()))
		return // stays pending; retried after ClaimIdle
	}
	if !ok {
		// Another handler is sending this message right now (a duplicate
		// entry, or one taken over from a replica that is only slow). The
		// entry stays pending and is looked at again after ClaimIdle, when
		// the record will say what happened.
		w.log.InfoContext(ctx, "message already being handled elsewhere", slog.String("message_id", id))
		return
	}
	hctx, stop := context.WithCancel(ctx)
	var keep sync.WaitGroup
	keep.Go(func() { w.keepClaim(hctx, entry.ID, id, token) })
	done, retryAt := w.process(hctx, id, rec, recErr)
	stop()
	keep.Wait()
	w.finish(context.WithoutCancel(ctx), entry.ID, id, token, done, retryAt)
}

// keepClaim resets the entry's idle time and extends the message lock while
// a long send runs, so no other replica takes it over.
func (w *Worker) keepClaim(ctx context.Context, entryID, id, token string) {
	t := time.NewTicker(max(w.cfg.ClaimIdle/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: tracking.OutboxStream, Group: Group,
				Consumer: w.cfg.Consumer, MinIdle: 0, Messages: []string{entryID}})
			w.refresh.Run(ctx, w.rdb, []string{lockKey(id)}, token, w.cfg.ClaimIdle.Milliseconds())
		}
	}
}

// ack removes a finished entry; the stream only holds work to do.
func (w *Worker) ack(ctx context.Context, entryID string) {
	w.finish(ctx, entryID, "", "", true, time.Time{})
}

// finish settles a handled entry and releases the message lock in one
// transaction: a finished entry is acked and deleted (the stream only holds
// work to do); a retry moves the message to the delayed set and acks its
// entry, so it is neither lost nor doubled; otherwise the entry stays
// pending for the next owner. An empty token means no lock is held.
func (w *Worker) finish(ctx context.Context, entryID, id, token string, done bool, retryAt time.Time) {
	retry := !retryAt.IsZero()
	if !done && !retry && token == "" {
		return
	}
	_, err := w.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if retry {
			p.ZAdd(ctx, tracking.OutboxDelayed, redis.Z{Score: float64(retryAt.UnixMilli()), Member: id})
		}
		if done || retry {
			p.XAck(ctx, tracking.OutboxStream, Group, entryID)
			p.XDel(ctx, tracking.OutboxStream, entryID)
		}
		if token != "" {
			w.unlock.Eval(ctx, p, []string{lockKey(id)}, token)
		}
		return nil
	})
	if err != nil {
		w.log.WarnContext(ctx, "outbox entry settling failed", slog.String("entry", entryID), slog.String("message_id", id),
			slog.Bool("retry", retry), slog.String("error", err.Error()))
	}
}

// mailboxSlot bounds concurrent sends per MESH mailbox. The API records ids
// in upper case; records from before it did may hold another case, and are
// the same mailbox.
func (w *Worker) mailboxSlot(mailbox string) chan struct{} {
	mailbox = strings.ToUpper(mailbox)
	w.mu.Lock()
	defer w.mu.Unlock()
	ch, ok := w.mailboxes[mailbox]
	if !ok {
		limit := w.cfg.PerMailbox
		if n := w.cfg.MailboxPerMailbox[mailbox]; n > 0 {
			limit = n
		}
		ch = make(chan struct{}, limit)
		w.mailboxes[mailbox] = ch
	}
	return ch
}

// reserveMemory holds back a multi-chunk send until its chunk buffers fit
// the SendMemory budget; one-chunk messages need no reservation (their
// buffers are bounded by Concurrency). A message larger than the whole
// budget waits for it to be free and then goes alone.
func (w *Worker) reserveMemory(ctx context.Context, rec *tracking.Message) (release func(), ok bool) {
	chunk := w.chunkSize(rec)
	if rec.PayloadSize <= chunk {
		return func() {}, true
	}
	need := min(rec.PayloadSize, 2*chunk, w.cfg.SendMemory)
	if !w.sendMem.TryAcquire(need) {
		w.log.InfoContext(ctx, "large send waiting for send memory", slog.String("message_id", rec.ID),
			slog.Int64("bytes", need), slog.Int64("budget", w.cfg.SendMemory))
		if err := w.sendMem.Acquire(ctx, need); err != nil {
			return nil, false
		}
	}
	return func() { w.sendMem.Release(need) }, true
}

// chunkSize is the chunk size rec is (or will be) sent with: the one
// recorded when MESH took its chunk 1, else the configured one (a send from
// chunk 1 records the configured size afresh).
func (w *Worker) chunkSize(rec *tracking.Message) int64 {
	if rec.ChunkSize > 0 && rec.MeshMessageID != "" {
		return rec.ChunkSize
	}
	return w.configuredChunkSize(rec.Mailbox)
}

// configuredChunkSize is the chunk size a new send from mailbox uses: the
// mailbox's own (registry chunkSize), else ChunkSize.
func (w *Worker) configuredChunkSize(mailbox string) int64 {
	if cs := w.cfg.MailboxChunkSize[strings.ToUpper(mailbox)]; cs > 0 {
		return cs
	}
	return w.cfg.ChunkSize
}

// backoff is the jittered delay before attempt number attempt+1.
func (w *Worker) backoff(attempt int) time.Duration {
	b := w.cfg.Backoff
	d := b[min(max(attempt-1, 0), len(b)-1)]
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
