package fakemesh

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"
)

// Tracking always carries the status fields: the SPEC example's
// TRANSFER / "Success" / "01" for messages that did not fail, the failure's
// own values otherwise, and always the status timestamp (mesh-api.md §1.5).
func TestTrackingStatusFields(t *testing.T) {
	const (
		sentISO     = "2026-11-24T19:22:52.375137"
		sentCompact = "20261124192252"
		laterISO    = "2026-11-24T19:32:52.375137"
		laterComp   = "20261124193252"
	)
	tests := []struct {
		name  string
		setup func(e *env) string // returns the message id, leaves the clock where status time was set
		// want v2 values; v1 uses the same with compact timestamp and Title-case status.
		status, event, desc, code, iso, compact string
		success                                 bool
	}{
		{"accepted", func(e *env) string {
			return e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
		}, "accepted", "TRANSFER", "Success", "01", sentISO, sentCompact, true},
		{"acknowledged", func(e *env) string {
			id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
			e.clock.Advance(10 * time.Minute)
			wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", "X26ABC2", nil, nil), 200)
			return id
		}, "acknowledged", "TRANSFER", "Success", "01", laterISO, laterComp, true},
		{"uploading", func(e *env) string {
			r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1",
				map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": "1:2"}, []byte("x"))
			wantStatus(t, r, 202)
			return r.json(t)["message_id"].(string)
		}, "uploading", "TRANSFER", "Success", "01", sentISO, sentCompact, true},
		{"error keeps its own values", func(e *env) string {
			id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
			e.clock.Advance(10 * time.Minute)
			if err := e.srv.SetTrackingEvent(id, TrackingEvent{Status: "error", Code: "99", Event: "SEND", Description: "boom"}); err != nil {
				t.Fatal(err)
			}
			return id
		}, "error", "SEND", "boom", "99", laterISO, laterComp, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := tc.setup(e)
			tr := e.tracking("X26ABC1", id, v2).json(t)
			want2 := map[string]any{"status": tc.status, "status_event": tc.event, "status_description": tc.desc,
				"status_code": tc.code, "status_timestamp": tc.iso, "status_success": tc.success}
			for k, v := range want2 {
				if tr[k] != v {
					t.Errorf("v2 %s = %v, want %v", k, tr[k], v)
				}
			}
			tr1 := e.tracking("X26ABC1", id, v1).json(t)
			success := "SUCCESS"
			if !tc.success {
				success = "ERROR"
			}
			want1 := map[string]any{"status": titleStatus(tc.status), "statusEvent": tc.event, "statusDescription": tc.desc,
				"statusCode": tc.code, "statusTimestamp": tc.compact, "statusSuccess": success}
			for k, v := range want1 {
				if tr1[k] != v {
					t.Errorf("v1 %s = %v, want %v", k, tr1[k], v)
				}
			}
			if tc.success && (tr1["failureDate"] != nil || tr1["failureDiagnostic"] != nil) {
				t.Errorf("v1 failure fields set for a successful message: %v %v", tr1["failureDate"], tr1["failureDiagnostic"])
			}
		})
	}
}

// An absurd mex-Chunk-Range total is refused with 417 InvalidHeaderChunks
// instead of panicking or allocating the chunk table.
func TestChunkRangeTotalBounded(t *testing.T) {
	const invalid = `{"detail":[{"event":"SEND","code":"InvalidHeaderChunks","msg":"Invalid chunk values sent in mex-Chunk-Range header"}]}`
	tests := []struct {
		rng    string
		status int
	}{
		{"1:9999999999999999", 417},
		{"1:100000000", 417},
		{"1:100001", 417}, // just above the documented bound (maxChunks)
		{"1:100000", 202},
	}
	for _, tc := range tests {
		t.Run(tc.rng, func(t *testing.T) {
			e := newEnv(t, nil)
			r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1",
				map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": tc.rng}, []byte("x"))
			wantStatus(t, r, tc.status)
			if tc.status == 417 {
				wantBody(t, r, invalid)
			}
		})
	}
}

// A message still uploading has not been delivered: to its recipient it
// does not exist (404 RECEIVE/20), while acknowledged messages stay 410.
func TestDownloadWhileUploadingIsNotFound(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1",
		map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": "1:2"}, []byte("one"))
	wantStatus(t, r, 202)
	id := r.json(t)["message_id"].(string)
	const notExist = `{"detail":[{"event":"RECEIVE","code":"20","msg":"Message does not exist"}]}`
	for _, tc := range []struct{ name, method, path string }{
		{"GET", http.MethodGet, "/messageexchange/X26ABC2/inbox/" + id},
		{"GET chunk 2", http.MethodGet, "/messageexchange/X26ABC2/inbox/" + id + "/2"},
		{"HEAD", http.MethodHead, "/messageexchange/X26ABC2/inbox/" + id},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req(tc.method, tc.path, "X26ABC2", map[string]string{"Accept": v2}, nil)
			wantStatus(t, r, 404)
			if tc.method == http.MethodGet {
				wantBody(t, r, notExist)
			}
		})
	}
	r = e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox/"+id+"/2", "X26ABC1",
		map[string]string{"Accept": v2, "mex-Chunk-Range": "2:2"}, []byte("two"))
	wantStatus(t, r, 202)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id, "X26ABC2", nil, nil), 206)
	wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", "X26ABC2", nil, nil), 200)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id, "X26ABC2", nil, nil), 410)
}

// The admin report endpoint ignores unknown fields (as the sandbox's model
// does) and gives a REPORT the mex-filename it was given.
func TestAdminReportLenientAndFileName(t *testing.T) {
	tests := []struct {
		name, body, wantFile string
	}{
		{"file name and unknown field", `{"mailbox_id":"X26ABC1","code":"14","description":"d","workflow_id":"W","file_name":"report.dat","not_a_field":1}`, "report.dat"},
		{"no file name", `{"mailbox_id":"X26ABC1","code":"14","description":"d","workflow_id":"W"}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			r := e.req(http.MethodPost, "/messageexchange/admin/report", "", nil, []byte(tc.body))
			wantStatus(t, r, 200)
			rep := r.json(t)["message_id"].(string)
			r = e.req(http.MethodGet, "/messageexchange/X26ABC1/inbox/"+rep, "X26ABC1", nil, nil)
			wantStatus(t, r, 200)
			if got, ok := r.header["Mex-Filename"]; r.header.Get("Mex-Messagetype") != "REPORT" ||
				r.header.Get("Mex-Filename") != tc.wantFile || (tc.wantFile == "" && ok) {
				t.Fatalf("mex-filename %q (present %v), want %q; headers %v", got, ok, tc.wantFile, r.header)
			}
		})
	}
	// The event endpoint is lenient too.
	e := newEnv(t, nil)
	id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
	wantStatus(t, e.req(http.MethodPost, "/admin/message/"+id+"/event", "", nil, []byte(`{"status":"error","code":"99","extra":"x"}`)), 200)
}

// The HMAC is over nonce_count exactly as sent (mesh-api.md §2.1).
func TestTokenNonceCountAsSent(t *testing.T) {
	e := newEnv(t, nil)
	stamp := e.clock.Now().UTC().Format("200601021504")
	// A nonce per case, so no case is refused as a replay of another.
	token := func(nonce, signed, sent string) string {
		mac := hmac.New(sha256.New, []byte(DemoSharedKey))
		mac.Write([]byte("X26ABC1:" + nonce + ":" + signed + ":" + DemoPassword + ":" + stamp))
		return "NHSMESH X26ABC1:" + nonce + ":" + sent + ":" + stamp + ":" + hex.EncodeToString(mac.Sum(nil))
	}
	hs := map[string]string{"mex-ClientVersion": "test==1", "mex-OSName": "Linux", "mex-OSVersion": "6", "Accept": v2}
	tests := []struct {
		name, signed, sent string
		status             int
	}{
		{"leading zero signed as sent", "01", "01", 200},
		{"plain count", "1", "1", 200},
		{"signed 1 sent 01", "1", "01", 403},
		{"signed 002 sent 002", "002", "002", 200},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{"Authorization": token("nc-nonce-"+string(rune('a'+i)), tc.signed, tc.sent)}
			for k, v := range hs {
				h[k] = v
			}
			r := e.req(http.MethodPost, "/messageexchange/X26ABC1", "", h, nil)
			wantStatus(t, r, tc.status)
			if tc.status == 403 {
				wantBody(t, r, `{"detail":[{"event":"","code":"","msg":"`+msgInvalidToken+`"}]}`)
			}
		})
	}
}

// v1 tracking fileSize is the message's size, kept after the body is freed
// by acknowledgement, failure or expiry.
func TestTrackingFileSizeSurvivesFreeing(t *testing.T) {
	body := []byte("twelve bytes")
	tests := []struct {
		name string
		free func(e *env, id string)
	}{
		{"accepted", func(*env, string) {}},
		{"acknowledged", func(e *env, id string) {
			wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", "X26ABC2", nil, nil), 200)
		}},
		{"expired", func(e *env, id string) {
			e.clock.Advance(5*24*time.Hour + time.Minute)
			if n := e.srv.ExpireUncollected(); n != 1 {
				t.Fatalf("expired %d", n)
			}
		}},
		{"failed by report", func(e *env, id string) {
			if _, err := e.srv.InjectReport(Report{Mailbox: "X26ABC1", Code: "14", LinkedMessageID: id, Status: "undeliverable"}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", body, nil)
			tc.free(e, id)
			if got := e.tracking("X26ABC1", id, v1).json(t)["fileSize"]; got != float64(len(body)) {
				t.Fatalf("fileSize %v, want %d", got, len(body))
			}
		})
	}
}
