package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgateway/gateway/internal/redistest"
)

func TestStoredPayloadIsTheBundle(t *testing.T) {
	body, err := documentBody(4096)
	if err != nil {
		t.Fatal(err)
	}
	value, valueIs := storedPayload(body)
	if !strings.Contains(valueIs, "ITK3 XML bundle") || !bytes.Contains(value, []byte("<Bundle")) {
		t.Fatalf("stored payload is %q (%d bytes), want the ITK3 XML bundle", valueIs, len(value))
	}
	// The bundle carries the base64 document, so it is at least as big.
	if len(value) < 4096*4/3 {
		t.Fatalf("bundle %d bytes for a 4096-byte PDF", len(value))
	}
	if v, is := storedPayload([]byte("not json")); !bytes.Equal(v, []byte("not json")) || !strings.Contains(is, "JSON request body") {
		t.Fatalf("fallback: %q, %q", v, is)
	}
}

func TestDrive(t *testing.T) {
	var calls atomic.Int64
	boom := errors.New("boom")
	res := drive(context.Background(), 50, 4, func(_ context.Context, i int) error {
		calls.Add(1)
		if i%10 == 0 {
			return boom
		}
		return nil
	})
	if calls.Load() != 50 || res.failed != 5 || len(res.latencies) != 45 || !errors.Is(res.firstErr, boom) {
		t.Fatalf("calls %d, failed %d, ok %d, first %v", calls.Load(), res.failed, len(res.latencies), res.firstErr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = drive(ctx, 20, 2, func(context.Context, int) error { return nil })
	if res.failed+len(res.latencies) != 20 || res.failed == 0 {
		t.Fatalf("cancelled: failed %d, ok %d", res.failed, len(res.latencies))
	}
}

// TestCeilingShort runs the calibration with a few hundred small ops on a
// real redis-server (skipped without one, like every real-Redis test).
func TestCeilingShort(t *testing.T) {
	body, err := documentBody(2048)
	if err != nil {
		t.Fatal(err)
	}
	value, valueIs := storedPayload(body)
	var log bytes.Buffer
	c := &ceiling{ops: 300, conc: 8, body: body, value: value, valueIs: valueIs, log: &log,
		startRedis: func(extra ...string) (string, func(), error) {
			return redistest.Start(t, extra...), func() {}, nil
		}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cal := c.run(ctx)
	if len(cal) != 4 {
		t.Fatalf("%d calibration rows, want 4: %+v", len(cal), cal)
	}
	for i, name := range []string{"redis-aof", "redis-aof-default", "redis-noaof", "http-hop"} {
		r := cal[i]
		if r.Name != name || r.Error != "" || r.Ops != 300 || r.Failed != 0 || r.OpsPerSec <= 0 || r.P99ms < r.P50ms {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	if cal[0].ValueBytes != len(value) || cal[3].ValueBytes != len(body) {
		t.Errorf("sizes: redis %d (want %d), http %d (want %d)", cal[0].ValueBytes, len(value), cal[3].ValueBytes, len(body))
	}

	var out bytes.Buffer
	printCalibration(&out, cal)
	for _, want := range []string{"calibration", "not targets", "redis-aof", "SETs/s", "redis-server CPU", "main thread", "http-hop", "req/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	js, err := json.Marshal(Report{Calibration: cal})
	if err != nil || !bytes.Contains(js, []byte(`"calibration":[{"name":"redis-aof"`)) {
		t.Errorf("JSON %s, %v", js, err)
	}
}
