package config

import (
	"os"
	"strings"
	"testing"
	"time"
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
