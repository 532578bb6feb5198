package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/registry"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaultsIsEmbedded(t *testing.T) {
	cfg, err := Load(envOf(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !cfg.Embedded() || cfg.Port != 8080 || cfg.AdminPort != 9090 || cfg.MaxBodyBytes != 100<<20 || cfg.RetentionTTL != 30*24*time.Hour {
		t.Fatalf("unexpected defaults: %+v", cfg)
	}
}

func TestLoadRealMode(t *testing.T) {
	cfg, err := Load(envOf(map[string]string{
		"PORT": "9000", "MESH_URL": "https://msg.intspineservices.nhs.uk", "MESH_MAILBOX_ID": "X26ABC1",
		"MESH_MAILBOX_PASSWORD": "pw", "MESH_SHARED_KEY": "k", "REDIS_URL": "redis://127.0.0.1:6379/0",
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.Embedded() || cfg.Port != 9000 {
		t.Fatalf("got %+v", cfg)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad port", map[string]string{"PORT": "70000"}, "PORT"},
		{"port not a number", map[string]string{"PORT": "x"}, "\"Port\""},
		{"mesh url scheme", map[string]string{"MESH_URL": "ftp://x", "REDIS_URL": "redis://r"}, "MESH_URL must be"},
		{"mesh without credentials", map[string]string{"MESH_URL": "https://x", "REDIS_URL": "redis://r"}, "MESH_MAILBOX_ID"},
		{"mesh without redis", map[string]string{"MESH_URL": "https://x", "MESH_MAILBOX_ID": "a", "MESH_MAILBOX_PASSWORD": "b", "MESH_SHARED_KEY": "c"}, "REDIS_URL is required"},
		{"bad redis url", map[string]string{"REDIS_URL": "http://x"}, "REDIS_URL must be"},
		{"cert without key", map[string]string{"MESH_CLIENT_CERT": "/c"}, "MESH_CLIENT_KEY"},
		{"tiny chunks", map[string]string{"MESH_CHUNK_SIZE": "10"}, "MESH_CHUNK_SIZE"},
		{"log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"retention", map[string]string{"RETENTION": "1m"}, "RETENTION"},
		{"send memory below one large send", map[string]string{"OUTBOX_SEND_MEMORY": "1048576"}, "OUTBOX_SEND_MEMORY"},
		{"negative lookup cache", map[string]string{"MESH_LOOKUP_CACHE_TTL": "-1s"}, "MESH_LOOKUP_CACHE_TTL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(envOf(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// MESH_CHUNK_SIZE: MESH wants every chunk but the last over 5 MB, and at
// most 100 MB per request, which a gzipped 100,000,000-byte chunk of
// incompressible data exceeds.
func TestChunkSizeBounds(t *testing.T) {
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"1048576", false}, {"2097152", false}, {"5242879", false}, {"5000000", false},
		{"5242880", true}, {"10485760", true}, {"99000000", true},
		{"99000001", false}, {"100000000", false},
	} {
		// OUTBOX_SEND_MEMORY must hold two chunks; keep it out of the way.
		_, err := Load(envOf(map[string]string{"MESH_CHUNK_SIZE": tc.value, "OUTBOX_SEND_MEMORY": "1000000000"}))
		if tc.ok && err != nil {
			t.Errorf("MESH_CHUNK_SIZE=%s refused: %v", tc.value, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), "MESH_CHUNK_SIZE must be between 5242880 (5 MiB) and 99000000 bytes")) {
			t.Errorf("MESH_CHUNK_SIZE=%s: error %v, want the bounds", tc.value, err)
		}
	}
	// One set of bounds for the variable, the registry's chunkSize and the client.
	mins := []int64{MinChunkSize, registry.MinChunkSize}
	maxs := []int64{MaxChunkSize, registry.MaxChunkSize, meshbridge.MaxChunkSize}
	if slices.Min(mins) != slices.Max(mins) || slices.Min(maxs) != slices.Max(maxs) {
		t.Errorf("chunk size bounds differ: config %d..%d, registry %d..%d, meshbridge max %d",
			MinChunkSize, MaxChunkSize, registry.MinChunkSize, registry.MaxChunkSize, meshbridge.MaxChunkSize)
	}
}

// MESH allows one inbox poll every 5 minutes; local fakes may be polled
// more often.
func TestPollsMESHTooOften(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		url      string
		want     bool
	}{
		{time.Minute, "https://msg.intspineservices.nhs.uk", true},
		{4*time.Minute + 59*time.Second, "https://mesh-sync.spineservices.nhs.uk/", true},
		{5 * time.Minute, "https://msg.intspineservices.nhs.uk", false},
		{time.Hour, "https://msg.intspineservices.nhs.uk", false},
		{time.Second, "http://127.0.0.1:8700", false},
		{time.Second, "http://[::1]:8700", false},
		{time.Second, "http://localhost:8700", false},
		{time.Second, "https://mesh.localhost", false},
		{time.Second, "https://10.0.0.5:443", true}, // a private address is still a remote server
		{time.Second, "%%", true},
	} {
		if got := PollsMESHTooOften(tc.interval, tc.url); got != tc.want {
			t.Errorf("PollsMESHTooOften(%s, %s) = %v, want %v", tc.interval, tc.url, got, tc.want)
		}
	}
}

// The README's configuration table is the public contract: every variable
// the gateway reads must be documented there.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range Names() {
		if !strings.Contains(string(readme), "| `"+name+"` |") {
			t.Errorf("README configuration table lacks %s", name)
		}
	}
}
