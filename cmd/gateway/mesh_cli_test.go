package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgateway/gateway/meshbridge/fakemesh"
)

func meshEnv(url, mailbox string) func(string) string {
	env := map[string]string{
		"MESH_URL": url, "MESH_MAILBOX_ID": mailbox,
		"MESH_MAILBOX_PASSWORD": fakemesh.DemoPassword, "MESH_SHARED_KEY": fakemesh.DemoSharedKey,
	}
	return func(k string) string { return env[k] }
}

func runMeshCLI(t *testing.T, getenv func(string) string, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runMesh(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestMeshCLIRoundTrip(t *testing.T) {
	srv, err := fakemesh.New(fakemesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	alice, bob := meshEnv(hs.URL, "X26ABC1"), meshEnv(hs.URL, "X26ABC2")
	dir := t.TempDir()
	payload := bytes.Repeat([]byte("clinical document line\n"), 500)
	in := filepath.Join(dir, "doc.txt")
	if err := os.WriteFile(in, payload, 0o600); err != nil {
		t.Fatal(err)
	}

	if out, _, err := runMeshCLI(t, alice, "", "handshake"); err != nil || !strings.Contains(out, `"ok"`) {
		t.Fatalf("handshake: %v %s", err, out)
	}
	out, _, err := runMeshCLI(t, alice, "", "send", in, "--to", "X26ABC2", "--workflow", "TEST_WORKFLOW",
		"--subject", "s", "--local-id", "cli-1", "--content-type", "text/plain", "--chunk-size", "4000", "--compress")
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	var sent struct {
		MessageID string `json:"message_id"`
		Chunks    int    `json:"chunks"`
	}
	if err := json.Unmarshal([]byte(out), &sent); err != nil || sent.MessageID == "" || sent.Chunks != 3 {
		t.Fatalf("send output %q: %v", out, err)
	}
	// a second message from stdin
	out, _, err = runMeshCLI(t, alice, "from stdin", "send", "-", "--to", "X26ABC2", "--workflow", "TEST_WORKFLOW")
	if err != nil || !strings.Contains(out, "message_id") {
		t.Fatalf("send -: %v %s", err, out)
	}

	out, _, err = runMeshCLI(t, bob, "", "inbox", "--workflow", "TEST_WORKFLOW", "--max", "10")
	var ids []string
	if err != nil || json.Unmarshal([]byte(out), &ids) != nil || len(ids) != 2 || !strings.Contains(out, sent.MessageID) {
		t.Fatalf("inbox: %v %s", err, out)
	}

	body := filepath.Join(dir, "out.txt")
	hdrs := filepath.Join(dir, "headers.json")
	if _, _, err := runMeshCLI(t, bob, "", "download", sent.MessageID, "--out", body, "--headers-out", hdrs); err != nil {
		t.Fatalf("download: %v", err)
	}
	if got, _ := os.ReadFile(body); !bytes.Equal(got, payload) {
		t.Fatalf("downloaded %d bytes, want %d", len(got), len(payload))
	}
	var h map[string]string
	if raw, _ := os.ReadFile(hdrs); json.Unmarshal(raw, &h) != nil || h["mex-messageid"] != sent.MessageID ||
		h["mex-from"] != "X26ABC1" || h["mex-localid"] != "cli-1" {
		t.Fatalf("headers %v", h)
	}
	// body to stdout, headers to stderr
	if out, errOut, err := runMeshCLI(t, bob, "", "download", ids[0]+""); err != nil || out == "" || !strings.Contains(errOut, "mex-messageid") {
		t.Fatalf("download to stdout: %v %q %q", err, out, errOut)
	}

	if _, _, err := runMeshCLI(t, bob, "", "ack", sent.MessageID); err != nil {
		t.Fatalf("ack: %v", err)
	}
	out, _, err = runMeshCLI(t, bob, "", "inbox")
	if err != nil || strings.Contains(out, sent.MessageID) {
		t.Fatalf("inbox after ack: %v %s", err, out)
	}
	out, _, err = runMeshCLI(t, alice, "", "track", sent.MessageID)
	if err != nil || !strings.Contains(out, `"acknowledged"`) {
		t.Fatalf("track: %v %s", err, out)
	}
	out, _, err = runMeshCLI(t, alice, "", "lookup", "X26", "TEST_WORKFLOW")
	if err != nil || !strings.Contains(out, "X26ABC2") {
		t.Fatalf("lookup: %v %s", err, out)
	}
	out, _, err = runMeshCLI(t, alice, "", "workflows", "TEST_WORKFLOW_ACK")
	if err != nil || !strings.Contains(out, "X26ABC3") {
		t.Fatalf("workflows: %v %s", err, out)
	}
}

func TestMeshCLIUsageErrors(t *testing.T) {
	env := meshEnv("http://127.0.0.1:1", "X26ABC1")
	tests := []struct {
		name string
		env  func(string) string
		args []string
		want string
	}{
		{"no command", env, nil, "missing command"},
		{"unknown command", env, []string{"frobnicate"}, "unknown command"},
		{"send without --to", env, []string{"send", "-", "--workflow", "W"}, "--to and --workflow"},
		{"send without file", env, []string{"send", "--to", "X", "--workflow", "W"}, "FILE|-"},
		{"download without id", env, []string{"download"}, "takes ID"},
		{"lookup one arg", env, []string{"lookup", "X26"}, "ODS WORKFLOW"},
		{"bad flag", env, []string{"inbox", "--nope"}, "flag provided but not defined"},
		{"missing env", func(string) string { return "" }, []string{"handshake"}, "MESH_MAILBOX_ID"},
		{"bad cert path", func(k string) string {
			if k == "MESH_CLIENT_CERT" || k == "MESH_CLIENT_KEY" {
				return "/nonexistent.pem"
			}
			return env(k)
		}, []string{"handshake"}, "client certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runMeshCLI(t, tc.env, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if out, _, err := runMeshCLI(t, env, "", "help"); err != nil || !strings.Contains(out, "MESH_SHARED_KEY") {
		t.Fatalf("help: %v", err)
	}
}
