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
	if len(cal) != 5 {
		t.Fatalf("%d calibration rows, want 5: %+v", len(cal), cal)
	}
	for i, name := range []string{"redis-aof", "redis-aof-default", "redis-noaof", "http-hop", "mesh-hop"} {
		r := cal[i]
		if r.Name != name || r.Error != "" || r.Ops != 300 || r.Failed != 0 || r.OpsPerSec <= 0 || r.P99ms < r.P50ms {
			t.Errorf("row %d: %+v", i, r)
		}
	}
	// The bundle's ids and timestamps are fresh per build, so the MESH hop's
	// bundle may differ from value by a few bytes, never by the document.
	if cal[0].ValueBytes != len(value) || cal[3].ValueBytes != len(body) || cal[4].ValueBytes < len(value)-64 || cal[4].ValueBytes > len(value)+64 {
		t.Errorf("sizes: redis %d (want %d), http %d (want %d), mesh %d (want ~%d)",
			cal[0].ValueBytes, len(value), cal[3].ValueBytes, len(body), cal[4].ValueBytes, len(value))
	}

	var out bytes.Buffer
	printCalibration(&out, cal)
	for _, want := range []string{"calibration", "not targets", "redis-aof", "SETs/s", "redis-server CPU", "main thread", "http-hop", "req/s", "mesh-hop", "msgs/s", "ms/msg"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	js, err := json.Marshal(Report{Calibration: cal})
	if err != nil || !bytes.Contains(js, []byte(`"calibration":[{"name":"redis-aof"`)) {
		t.Errorf("JSON %s, %v", js, err)
	}
}

func TestBounds(t *testing.T) {
	rows := []Calibration{
		{Name: "redis-aof", Ops: 10, RedisCPUms: 0.3, RedisChildCPUms: 0.05, BenchCPUms: 0.15},
		{Name: "redis-noaof", Ops: 10, RedisCPUms: 0.01, BenchCPUms: 0.01},
		{Name: "http-hop", Ops: 10, BenchCPUms: 0.5},
		{Name: "mesh-hop", Ops: 10, BenchCPUms: 1},
	}
	tests := []struct {
		name string
		cal  []Calibration
		want map[string]float64 // scenario -> docs/s on 2 CPUs
	}{
		{"all rows", rows, map[string]float64{"intake": 2000, "e2e": 1000}},
		{"mesh hop failed", append(append([]Calibration{}, rows[:3]...), Calibration{Name: "mesh-hop", Ops: 10, BenchCPUms: 1, Error: "boom"}),
			map[string]float64{"intake": 2000}},
		{"no redis row", rows[1:], map[string]float64{}},
		{"nothing", nil, map[string]float64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bounds(tt.cal, 2)
			if len(got) != len(tt.want) {
				t.Fatalf("bounds %+v, want %v", got, tt.want)
			}
			for _, b := range got {
				if w, ok := tt.want[b.Scenario]; !ok || b.DocsPerSec < w-0.01 || b.DocsPerSec > w+0.01 {
					t.Errorf("%s: %.2f docs/s, want %v", b.Scenario, b.DocsPerSec, tt.want)
				}
			}
			var out bytes.Buffer
			printBounds(&out, got)
			if len(got) > 0 && !strings.Contains(out.String(), "bound: intake <= 2000 docs/s") {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}
