package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/meshgateway/gateway/cmd/meshgw-bench/stack"
)

const (
	intakeDocsPerSec = 2000
	intakeP99        = 50 * time.Millisecond
	e2eDocsPerSec    = 1830
	rssFactor        = 1.5
	uploadMaxBody    = "200000000"
)

type bench struct {
	opts options
	st   *stack.Stack
	log  io.Writer
	// posted counts every 202 so far: the e2e scenario waits for earlier
	// runs' messages to be sent before it starts its clock.
	posted  int
	lastIDs []string // ids of the latest burst
}

// burst is the outcome of posting n copies of body concurrently.
type burst struct {
	loadResult // latencies are of the 202s
	ids        []string
}

// signTokens makes n single-use JWTs up front (RS512 signing would
// otherwise be timed as part of the caller).
func (b *bench) signTokens(ctx context.Context, n int) ([]string, error) {
	tokens := make([]string, n)
	workers := max(runtime.NumCPU(), 1)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				tok, err := b.st.Caller.Token()
				if err != nil {
					errs[w] = err
					return
				}
				tokens[i] = tok
			}
		}()
	}
	wg.Wait()
	return tokens, errors.Join(errs...)
}

// post sends len(tokens) copies of body from opts.concurrency callers.
func (b *bench) post(ctx context.Context, body []byte, tokens []string) burst {
	hc := stack.HTTPClient(b.opts.concurrency, 60*time.Second)
	ids := make([]string, len(tokens))
	out := burst{loadResult: drive(ctx, len(tokens), b.opts.concurrency, func(ctx context.Context, i int) error {
		acc, _, err := b.st.Post(ctx, hc, tokens[i], "application/json", bytes.NewReader(body), "")
		ids[i] = acc.ID // "" unless err == nil
		return err
	})}
	for _, id := range ids {
		if id != "" {
			out.ids = append(out.ids, id)
		}
	}
	b.posted += len(out.ids)
	b.lastIDs = out.ids
	return out
}

func (b *bench) documentBody() ([]byte, error) { return documentBody(b.opts.docSize) }

// documentBody is the intake JSON request carrying a docSize-byte PDF.
func documentBody(docSize int64) ([]byte, error) {
	return stack.DocumentJSON("Consultation summary", stack.PDFBytes(docSize, 1))
}

func (b *bench) intake(ctx context.Context) (Result, error) {
	r := Result{Scenario: "intake", Target: fmt.Sprintf(">= %d docs/s, p99 <= %d ms", intakeDocsPerSec, intakeP99.Milliseconds())}
	body, err := b.documentBody()
	if err != nil {
		return r, err
	}
	// Warm-up: open the connections and JIT-free paths (Go has none, but
	// Redis and the kernel do) with one request per caller, untimed.
	warm, err := b.signTokens(ctx, b.opts.concurrency)
	if err != nil {
		return r, err
	}
	if w := b.post(ctx, body, warm); w.failed > 0 {
		return r, fmt.Errorf("warm-up: %d of %d failed: %w", w.failed, len(warm), w.firstErr)
	}
	tokens, err := b.signTokens(ctx, b.opts.docs)
	if err != nil {
		return r, err
	}
	cpu0, _ := b.st.Gateway.CPUTime()
	res := b.post(ctx, body, tokens)
	cpu1, _ := b.st.Gateway.CPUTime()
	r.GatewayCPUms = cpuPerDoc(cpu1-cpu0, len(res.ids))
	r.Docs, r.Failed, r.Seconds = len(res.ids), res.failed, res.elapsed.Seconds()
	r.DocsPerSec = float64(len(res.ids)) / res.elapsed.Seconds()
	r.P50ms, r.P95ms, r.P99ms = percentileMs(res.latencies, 50), percentileMs(res.latencies, 95), percentileMs(res.latencies, 99)
	r.Met = res.failed == 0 && r.DocsPerSec >= intakeDocsPerSec && r.P99ms <= float64(intakeP99.Milliseconds())
	r.Note = fmt.Sprintf("%d callers, %d-byte PDF, %d-byte JSON body, %d warm-up requests untimed", b.opts.concurrency, b.opts.docSize, len(body), len(warm))
	if res.failed > 0 {
		r.Note += "; first failure: " + res.firstErr.Error()
	}
	return r, nil
}

// sentCounter counts messages MESH has accepted, from the best source the
// gateway offers.
type sentCounter struct {
	name  string
	count func(ctx context.Context) (int, error)
}

func (b *bench) pickCounter(ctx context.Context) sentCounter {
	hc := stack.HTTPClient(4, 10*time.Second)
	if _, ok, err := b.st.MetricsSent(ctx, hc); err == nil && ok {
		return sentCounter{name: `gateway /metrics meshgw_messages{state="sent"...}`, count: func(ctx context.Context) (int, error) {
			n, _, err := b.st.MetricsSent(ctx, hc)
			return int(n), err
		}}
	}
	if _, err := b.st.Stats(ctx); err == nil {
		return sentCounter{name: "fakemesh /admin/stats sends", count: func(ctx context.Context) (int, error) {
			s, err := b.st.Stats(ctx)
			return int(s.Sends), err
		}}
	}
	// Last resort: poll a sample of the latest run's ids. Sparse: it reports
	// everything sent once the sampled messages are, else nothing.
	return sentCounter{name: "GET /v1/messages/{id} on sampled ids", count: func(ctx context.Context) (int, error) {
		step := max(len(b.lastIDs)/50, 1)
		for i := 0; i < len(b.lastIDs); i += step {
			m, err := b.st.GetMessage(ctx, hc, b.lastIDs[i])
			if err != nil {
				return 0, err
			}
			if !slices.Contains(stack.SentStates, m.State) {
				return 0, nil
			}
		}
		return b.posted, nil
	}}
}

// waitCount polls c until it reaches want or limit passes.
func waitCount(ctx context.Context, c sentCounter, want int, limit time.Duration, every time.Duration) (int, error) {
	deadline := time.Now().Add(limit)
	n := 0
	for {
		var err error
		n, err = c.count(ctx)
		if err == nil && n >= want {
			return n, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return n, fmt.Errorf("%s: %w", c.name, err)
			}
			return n, fmt.Errorf("only %d of %d messages sent after %v (%s)", n, want, limit, c.name)
		}
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(every):
		}
	}
}

func (b *bench) endToEnd(ctx context.Context) (Result, error) {
	r := Result{Scenario: "e2e", Target: fmt.Sprintf(">= %d docs/s", e2eDocsPerSec)}
	body, err := b.documentBody()
	if err != nil {
		return r, err
	}
	tokens, err := b.signTokens(ctx, b.opts.docs)
	if err != nil {
		return r, err
	}
	counter := b.pickCounter(ctx)
	// Earlier scenarios' messages must be out of the way first.
	base, err := waitCount(ctx, counter, b.posted, 10*time.Minute, 500*time.Millisecond)
	if err != nil {
		return r, fmt.Errorf("waiting for earlier messages to be sent: %w", err)
	}
	cpu0, _ := b.st.Gateway.CPUTime()
	start := time.Now()
	res := b.post(ctx, body, tokens)
	if len(res.ids) == 0 {
		return r, fmt.Errorf("no document accepted: %w", res.firstErr)
	}
	if _, err := waitCount(ctx, counter, base+len(res.ids), 10*time.Minute, 100*time.Millisecond); err != nil {
		return r, err
	}
	elapsed := time.Since(start)
	cpu1, _ := b.st.Gateway.CPUTime()
	r.GatewayCPUms = cpuPerDoc(cpu1-cpu0, len(res.ids))
	r.Docs, r.Failed, r.Seconds = len(res.ids), res.failed, elapsed.Seconds()
	r.DocsPerSec = float64(len(res.ids)) / elapsed.Seconds()
	r.CountedBy = counter.name
	r.Met = res.failed == 0 && r.DocsPerSec >= e2eDocsPerSec
	r.Note = fmt.Sprintf("intake part %.2fs (%.0f docs/s)", res.elapsed.Seconds(), float64(len(res.ids))/res.elapsed.Seconds())
	return r, nil
}

func (b *bench) upload(ctx context.Context) (Result, error) {
	size := b.opts.uploadSize
	r := Result{Scenario: "upload100mb", Target: fmt.Sprintf("peak RSS <= %.1fx document (%.0f MB)", rssFactor, rssFactor*mb(size)), DocumentBytes: size}
	// A fresh process, so VmHWM covers this upload only.
	b.st.Gateway.Stop(30 * time.Second)
	b.st.SetGatewayEnv("MAX_BODY_BYTES", uploadMaxBody)
	if err := b.st.StartGateway(ctx); err != nil {
		return r, err
	}
	gw := b.st.Gateway
	var err error
	if r.StartRSSBytes, err = gw.PeakRSS(); err != nil {
		return r, err
	}

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() { pw.CloseWithError(writeUpload(mw, size)) }()
	tok, err := b.st.Caller.Token()
	if err != nil {
		return r, err
	}
	hc := stack.HTTPClient(1, 10*time.Minute)
	start := time.Now()
	acc, _, err := b.st.Post(ctx, hc, tok, mw.FormDataContentType(), pr, "")
	_ = pr.CloseWithError(errors.New("upload finished"))
	if err != nil {
		return r, fmt.Errorf("upload: %w", err)
	}
	r.Seconds = time.Since(start).Seconds()
	if r.RSSAfter202, err = gw.PeakRSS(); err != nil {
		return r, err
	}
	b.posted++

	// Peak through the MESH send too (chunking, compression).
	deadline := time.Now().Add(10 * time.Minute)
	for {
		m, err := b.st.GetMessage(ctx, hc, acc.ID)
		if err == nil && slices.Contains(stack.SentStates, m.State) {
			break
		}
		if err == nil && m.State != "accepted" && m.State != "sending" {
			return r, fmt.Errorf("upload message %s ended in state %s (lastError %v)", acc.ID, m.State, m.LastError)
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("upload message %s not sent after 10 minutes", acc.ID)
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if r.PeakRSSBytes, err = gw.PeakRSS(); err != nil {
		return r, err
	}
	r.Docs = 1
	r.DocsPerSec = 0
	r.Met = float64(r.PeakRSSBytes) <= rssFactor*float64(size)
	r.Note = fmt.Sprintf("streamed multipart, MAX_BODY_BYTES=%s, %.0f MB/s upload", uploadMaxBody, mb(size)/r.Seconds)
	return r, nil
}

// writeUpload writes the metadata part, then the file part streamed from
// the PDF generator.
func writeUpload(mw *multipart.Writer, size int64) error {
	meta, err := json.Marshal(stack.Metadata("Large scanned record"))
	if err != nil {
		return err
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	part, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := part.Write(meta); err != nil {
		return err
	}
	h = textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="record.pdf"`)
	h.Set("Content-Type", "application/pdf")
	if part, err = mw.CreatePart(h); err != nil {
		return err
	}
	if _, err := io.Copy(part, stack.PDFLike(size, 7)); err != nil {
		return err
	}
	return mw.Close()
}

// cpuPerDoc is CPU milliseconds per document: a load-independent figure
// (the wall-clock rates depend on what else runs on the machine).
func cpuPerDoc(cpu time.Duration, docs int) float64 {
	if docs == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / 1000 / float64(docs)
}

// percentileMs is the nearest-rank percentile in milliseconds.
func percentileMs(d []time.Duration, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = min(max(rank, 0), len(s)-1)
	return float64(s[rank].Microseconds()) / 1000
}
