// Package crash is the gateway's crash-consistency test: real redis-server
// (AOF appendfsync always, so every 202 is durable), `gateway fakemesh` with
// injected MESH faults, and the gateway binary SIGKILLed and restarted while
// documents are being sent. Every 202 must reach MESH (0 lost) and crashes
// may cost at most one duplicate each.
//
//	go test ./test/crash/ -v            (about 2-3 minutes; CRASH_SEED=n to vary,
//	                                     GATEWAY_BIN=path to test a prebuilt binary)
package crash

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgateway/gateway/cmd/meshgw-bench/stack"
)

const (
	documents   = 500
	concurrency = 16
	docBytes    = 4 << 10
	// drainLimit is how long the gateway gets, with MESH faults off, to send
	// everything it accepted. CRASH_DRAIN_LIMIT (a Go duration) may raise it
	// to diagnose a failure, never to pass one.
	drainLimit = 90 * time.Second
)

// gatewayBin is built once by TestMain; empty when redis-server is missing.
var gatewayBin string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if _, err := exec.LookPath("redis-server"); err != nil || testing.Short() {
		return m.Run() // the test reports the skip (or the CI failure)
	}
	if bin := os.Getenv("GATEWAY_BIN"); bin != "" { // a prebuilt binary (CI artefact, or while the tree does not build)
		gatewayBin = bin
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "crash-gateway-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if gatewayBin, err = stack.BuildGateway(ctx, dir); err != nil {
		fmt.Fprintln(os.Stderr, "crash:", err)
		return 1
	}
	return m.Run()
}

// doc is one document the test sends, retried with the same key until a 202.
type doc struct {
	key  string
	body []byte
	id   string // gateway id from the 202
	// tries counts POSTs; replays counts 202s marked Idempotent-Replayed.
	tries int
}

type killRecord struct {
	at      time.Duration
	restart time.Duration
}

func TestCrashConsistency(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server not on PATH (apt-get install -y redis-server): crash test needs a real Redis"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if testing.Short() {
		t.Skip("crash test takes about 2-3 minutes; skipped with -short")
	}
	seed := uint64(1)
	if v := os.Getenv("CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CRASH_SEED %q: %v", v, err)
		}
		seed = n
	}
	t.Logf("seed %d (set CRASH_SEED to vary)", seed)
	rng := rand.New(rand.NewPCG(seed, 0x63726173))

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	st, err := stack.Start(ctx, stack.Options{
		GatewayBin: gatewayBin, Dir: dir, AppendFsync: "always",
		// A stable replica id (as a Kubernetes pod keeps its name across
		// container restarts) and short retry waits so the drain fits the test.
		GatewayEnv: map[string]string{"LOG_LEVEL": "info", "GATEWAY_REPLICA_ID": "crash-replica",
			"OUTBOX_RETRY_BACKOFF": "200ms,500ms,1s,2s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t.Cleanup(func() {
		if t.Failed() {
			if kept, err := keepLogs(dir); err == nil {
				t.Logf("gateway and fakemesh logs kept in %s", kept)
			}
		}
	})
	// 20% of MESH calls fail with 5xx/429. Connections dropped after MESH
	// created a message (a lost 202) are left out here: the MESH API has no
	// way to ask "did you get it?", so the gateway must re-send (same Bundle
	// identifier → the practice answers 20007) and each such drop is a
	// duplicate not caused by a kill; meshbridge's fault tests cover them.
	if err := st.SetFaults(ctx, stack.Faults{ErrorRate: 0.2, Statuses: []int{500, 502, 503, 429},
		Seed: int64(seed)}); err != nil {
		t.Fatal(err)
	}

	// Kill schedule first, so the sends can be paced to span it.
	nKills := 5 + rng.IntN(4)
	gaps := make([]time.Duration, nKills)
	var window time.Duration
	for i := range gaps {
		gaps[i] = 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))
		window += gaps[i]
	}
	docs := make([]*doc, documents)
	for i := range docs {
		body, err := stack.DocumentJSON(fmt.Sprintf("Crash test document %d", i), stack.PDFBytes(docBytes, seed*1000+uint64(i)))
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = &doc{key: fmt.Sprintf("crash-%d-%04d", seed, i), body: body}
	}

	start := time.Now()
	var kills []killRecord
	killerDone := make(chan error, 1)
	go func() {
		for _, gap := range gaps {
			select {
			case <-ctx.Done():
				killerDone <- ctx.Err()
				return
			case <-time.After(gap):
			}
			at := time.Since(start)
			st.Gateway.Kill()
			t0 := time.Now()
			if err := st.StartGateway(ctx); err != nil {
				killerDone <- fmt.Errorf("restart after kill %d: %w", len(kills)+1, err)
				return
			}
			kills = append(kills, killRecord{at: at, restart: time.Since(t0)})
		}
		killerDone <- nil
	}()

	sendErrs := sendAll(ctx, st, docs, window)
	if err := <-killerDone; err != nil {
		t.Fatalf("killer: %v", err)
	}
	sendPhase := time.Since(start)
	for _, k := range kills {
		t.Logf("kill at %v, gateway ready again after %v", k.at.Round(time.Millisecond), k.restart.Round(time.Millisecond))
	}
	if len(sendErrs) > 0 {
		t.Fatalf("%d documents never got a 202; first: %v", len(sendErrs), sendErrs[0])
	}
	accepted := map[string]*doc{}
	tries := 0
	for _, d := range docs {
		if prev, dup := accepted[d.id]; dup {
			t.Errorf("documents %s and %s (different Idempotency-Keys) got the same id %s", prev.key, d.key, d.id)
		}
		accepted[d.id] = d
		tries += d.tries
	}
	t.Logf("send phase %v: %d documents accepted in %d POSTs, %d kills", sendPhase.Round(time.Millisecond), len(accepted), tries, len(kills))

	// Faults off; the gateway must now drain everything it accepted.
	if err := st.SetFaults(ctx, stack.Faults{Seed: int64(seed)}); err != nil {
		t.Fatal(err)
	}
	hc := stack.HTTPClient(4, 30*time.Second)
	limit := drainLimit
	if v := os.Getenv("CRASH_DRAIN_LIMIT"); v != "" {
		if limit, err = time.ParseDuration(v); err != nil {
			t.Fatalf("CRASH_DRAIN_LIMIT: %v", err)
		}
	}
	drainStart := time.Now()
	var pending []stack.Message
	for {
		pending, err = st.ListMessages(ctx, hc, "accepted,sending", 20)
		if err != nil {
			t.Logf("list pending: %v", err)
		} else if len(pending) == 0 {
			break
		}
		if time.Since(drainStart) > limit {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	drained := time.Since(drainStart)
	t.Logf("drain: %v (limit %v)", drained.Round(time.Millisecond), drainLimit)

	all, err := st.ListMessages(ctx, hc, "", 20)
	if err != nil {
		t.Fatalf("list all messages: %v", err)
	}
	byID := map[string]stack.Message{}
	for _, m := range all {
		byID[m.ID] = m
	}
	var extra, missing []string
	for _, m := range all {
		if _, ok := accepted[m.ID]; !ok {
			extra = append(extra, m.ID+"("+m.State+")")
		}
	}
	for id := range accepted {
		if _, ok := byID[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(extra) > 0 {
		t.Errorf("GET /v1/messages lists %d messages no caller got a 202 for: %v", len(extra), extra)
	}
	if len(missing) > 0 {
		t.Errorf("GET /v1/messages (%d listed) omits %d accepted messages: %v", len(all), len(missing), missing)
	}

	// Every 202 must have reached MESH.
	var lost []string
	records := map[string]stack.Message{}
	for id := range accepted {
		m, err := st.GetMessage(ctx, hc, id)
		ok := err == nil
		if ok {
			records[id] = m
		} else if !strings.Contains(err.Error(), "status 404") {
			t.Fatalf("GET message %s: %v", id, err)
		}
		reason := ""
		switch {
		case !ok:
			reason = "no tracking record (GET 404)"
		case !slices.Contains(stack.SentStates, m.State):
			reason = fmt.Sprintf("state %s attempts %d firstChunkAttempts %d lastError %v", m.State, m.Attempts, m.FirstChunkAttempts, m.LastError)
		case m.MeshMessageID == "":
			reason = "state " + m.State + " without meshMessageId"
		default:
			mm, err := st.MeshMessage(ctx, m.MeshMessageID)
			switch {
			case errors.Is(err, stack.ErrNotFound):
				reason = "meshMessageId " + m.MeshMessageID + " unknown to fakemesh"
			case err != nil:
				t.Fatalf("fakemesh message %s: %v", m.MeshMessageID, err)
			case mm.ChunksReceived < mm.ChunkCount:
				reason = fmt.Sprintf("MESH message %s has %d of %d chunks", m.MeshMessageID, mm.ChunksReceived, mm.ChunkCount)
			}
		}
		if reason != "" {
			lost = append(lost, id+": "+reason)
		}
	}
	sort.Strings(lost)

	// Duplicates: practice inbox messages sharing an ITK3 Bundle identifier.
	inbox, err := st.PracticeBundles(ctx, stack.PracticeInbox, 5*documents)
	if err != nil {
		t.Fatalf("read practice inbox: %v", err)
	}
	perBundle := map[string]int{}
	for _, b := range inbox {
		perBundle[b.BundleID]++
	}
	duplicates := 0
	var dupBundles []string
	byBundle := map[string]stack.Message{}
	for _, m := range records {
		byBundle[m.BundleID] = m
	}
	for bid, n := range perBundle {
		if n > 1 {
			duplicates += n - 1
			m := byBundle[bid]
			dupBundles = append(dupBundles, fmt.Sprintf("bundle %s x%d (message %s, firstChunkAttempts %d)", bid, n, m.ID, m.FirstChunkAttempts))
		}
	}
	sort.Strings(dupBundles)
	var notInInbox []string
	for id := range accepted {
		if m, ok := records[id]; ok && m.BundleID != "" && perBundle[m.BundleID] == 0 {
			notInInbox = append(notInInbox, id)
		}
	}
	stats, err := st.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("RESULT kills=%d accepted=%d lost=%d duplicates=%d (practice inbox %d messages, %d distinct bundles)",
		len(kills), len(accepted), len(lost), duplicates, len(inbox), len(perBundle))
	t.Logf("fakemesh: sends=%d injected errors=%d injected drops=%d (send route drops %d; half of drops happen after the message was created)",
		stats.Sends, stats.FaultErrors, stats.FaultDrops, stats.Requests["send 0"])
	t.Logf("fakemesh requests by route/status: %v", stats.Requests)
	if len(pending) > 0 {
		var ps []string
		for _, m := range pending {
			ps = append(ps, fmt.Sprintf("%s %s attempts=%d firstChunkAttempts=%d lastError=%v", m.ID, m.State, m.Attempts, m.FirstChunkAttempts, m.LastError))
		}
		t.Errorf("%d messages still accepted/sending after %v with MESH faults off:\n  %s", len(pending), drained.Round(time.Second), strings.Join(ps, "\n  "))
		ids := make([]string, 0, len(pending))
		for _, m := range pending {
			ids = append(ids, m.ID)
		}
		t.Logf("outbox state in Redis:\n%s", outboxState(ctx, st.RedisAddr, ids))
	} else if drained > drainLimit {
		t.Errorf("the gateway needed %v to drain with MESH faults off (limit %v)", drained.Round(time.Second), drainLimit)
	}
	if len(lost) > 0 {
		t.Errorf("%d accepted messages did not reach MESH:\n  %s", len(lost), strings.Join(lost, "\n  "))
	}
	if len(notInInbox) > 0 {
		t.Errorf("%d sent messages whose Bundle is not in the %s inbox: %v", len(notInInbox), stack.PracticeInbox, notInInbox)
	}
	if duplicates > len(kills) {
		var dupIDs []string
		for bid, n := range perBundle {
			if n > 1 {
				dupIDs = append(dupIDs, byBundle[bid].ID)
			}
		}
		t.Errorf("%d duplicate deliveries for %d kills (at most one per kill allowed); %d of the %d duplicated messages had a MESH send fail with a dropped connection (response lost) before the resend: %v",
			duplicates, len(kills), afterTransportFailure(st.Gateway.LogPath, dupIDs), len(dupIDs), dupBundles)
	}
}

// sendAll posts every document with concurrency callers, paced so the
// sends span window (the kill schedule), retrying connection errors and
// 5xx with the same Idempotency-Key. It returns the documents that never
// got a 202 within the bounded retries.
func sendAll(ctx context.Context, st *stack.Stack, docs []*doc, window time.Duration) []error {
	hc := stack.HTTPClient(concurrency, 10*time.Second)
	interval := window / time.Duration(len(docs))
	next := make(chan *doc)
	go func() {
		defer close(next)
		tick := time.NewTicker(max(interval, time.Millisecond))
		defer tick.Stop()
		for _, d := range docs {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			next <- d
		}
	}()
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				if err := sendOne(ctx, st, hc, d); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

func sendOne(ctx context.Context, st *stack.Stack, hc *http.Client, d *doc) error {
	var last error
	for range 200 { // at 50-100 ms a try, well beyond any restart
		tok, err := st.Caller.Token()
		if err != nil {
			return err
		}
		d.tries++
		acc, status, err := st.Post(ctx, hc, tok, "application/json", bytes.NewReader(d.body), d.key)
		if err == nil {
			d.id = acc.ID
			return nil
		}
		last = err
		// Connection refused/reset while the gateway restarts, and 5xx, are
		// retryable with the same key; other 4xx are test bugs or gateway bugs.
		if status != 0 && status < 500 && status != http.StatusConflict && status != http.StatusTooManyRequests {
			return fmt.Errorf("document %s: %w", d.key, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("document %s: %w", d.key, ctx.Err())
		case <-time.After(50*time.Millisecond + time.Duration(rand.IntN(50))*time.Millisecond):
		}
	}
	return fmt.Errorf("document %s: no 202 after 200 tries: %w", d.key, last)
}
