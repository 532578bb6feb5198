package app

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/meshgateway/gateway/config"
)

// An inbox poll interval under MESH's 5 minutes is allowed (tests, the
// demo, local fakes) but warned about at start-up when MESH is real.
func TestStartupWarnsAboutFrequentInboxPolls(t *testing.T) {
	const warning = "INBOX_POLL_INTERVAL is below MESH's limit"
	for _, tc := range []struct {
		name, meshURL, interval string
		warn                    bool
	}{
		{"real MESH polled every minute", "https://msg.intspineservices.nhs.uk", "1m", true},
		{"real MESH every 5 minutes", "https://msg.intspineservices.nhs.uk", "5m", false},
		{"loopback fake every second", "http://127.0.0.1:8700", "1s", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{
				"REDIS_URL": "redis://" + miniredis.RunT(t).Addr(), "GATEWAY_AUDIENCE": "https://gw.test",
				"MESH_URL": tc.meshURL, "MESH_MAILBOX_ID": "X26ABC1", "MESH_MAILBOX_PASSWORD": "pw", "MESH_SHARED_KEY": "key",
				"INBOX_POLL_INTERVAL": tc.interval,
			}
			getenv := func(k string) string { return env[k] }
			cfg, err := config.Load(getenv)
			if err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			a, err := New(t.Context(), Options{Config: cfg, Getenv: getenv, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				Listener: listen(t), AdminListener: listen(t)})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			a.close()
			var line string
			for l := range strings.Lines(logs.String()) {
				if strings.Contains(l, warning) {
					line = l
				}
			}
			if tc.warn != (line != "") {
				t.Fatalf("warning logged = %v, want %v:\n%s", line != "", tc.warn, logs.String())
			}
			if tc.warn && (!strings.Contains(line, `"level":"WARN"`) || !strings.Contains(line, `"interval":"1m0s"`) ||
				!strings.Contains(line, "X26ABC1")) {
				t.Fatalf("warning lacks level, interval or mailbox: %s", line)
			}
		})
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// A mailbox's own chunkSize must fit OUTBOX_SEND_MEMORY like the global one:
// otherwise one large send from it would use far more than the budget.
func TestSendMemoryMustHoldMailboxChunks(t *testing.T) {
	for _, tc := range []struct {
		name, memory string
		wantErr      bool
	}{
		{"budget too small for the mailbox's chunks", "67108864", true},
		{"budget large enough", "104857600", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := filepath.Join(t.TempDir(), "registry.yaml")
			yaml := "audience: https://gw.test\nmesh: {url: \"https://msg.intspineservices.nhs.uk\", sharedKey: key}\n" +
				"mailboxes:\n  - {id: X26ABC1, password: pw, odsCode: X26, chunkSize: 50000000}\nclients: []\n"
			if err := os.WriteFile(reg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"REDIS_URL": "redis://" + miniredis.RunT(t).Addr(), "GATEWAY_CONFIG": reg,
				"OUTBOX_SEND_MEMORY": tc.memory, "INBOX_POLL_INTERVAL": "5m"}
			getenv := func(k string) string { return env[k] }
			cfg, err := config.Load(getenv)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(t.Context(), Options{Config: cfg, Getenv: getenv, Logger: slog.New(slog.DiscardHandler),
				Listener: listen(t), AdminListener: listen(t)})
			if err == nil {
				a.close()
			}
			if gotErr := err != nil && strings.Contains(err.Error(), "OUTBOX_SEND_MEMORY"); gotErr != tc.wantErr {
				t.Fatalf("New error = %v, want an OUTBOX_SEND_MEMORY error: %v", err, tc.wantErr)
			}
		})
	}
}
