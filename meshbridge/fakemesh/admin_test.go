package fakemesh

import (
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestInjectReportViaAdmin(t *testing.T) {
	e := newEnv(t, nil)
	id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
	r := e.req(http.MethodPost, "/messageexchange/admin/report", "", nil, []byte(`{"mailbox_id":"X26ABC1","code":"14","description":"Message not collected by recipient after 5 days","workflow_id":"TEST_WORKFLOW","local_id":"L1","status":"undeliverable","linked_message_id":"`+id+`"}`))
	wantStatus(t, r, 200)
	rep := r.json(t)["message_id"].(string)
	r = e.req(http.MethodGet, "/messageexchange/X26ABC1/inbox/"+rep, "X26ABC1", nil, nil)
	wantStatus(t, r, 200)
	if r.header.Get("Mex-Statuscode") != "14" || r.header.Get("Mex-Statusevent") != "TRANSFER" || r.header.Get("Mex-Linkedmsgid") != id || r.header.Get("Mex-Messagetype") != "REPORT" {
		t.Fatalf("report headers %v", r.header)
	}
	if tr := e.tracking("X26ABC1", id, v2).json(t); tr["status"] != "undeliverable" || tr["status_code"] != "14" {
		t.Fatalf("linked tracking %v", tr)
	}
	if ids := e.inboxIDs("X26ABC2"); len(ids) != 0 {
		t.Fatalf("undeliverable message still in recipient inbox: %v", ids)
	}
	wantStatus(t, e.req(http.MethodPost, "/admin/report", "", nil, []byte(`{"mailbox_id":"NOPE","code":"1"}`)), 404)
	wantStatus(t, e.req(http.MethodPost, "/admin/report", "", nil, []byte(`{"mailbox_id":"X26ABC1","status":"weird"}`)), 400)

	// Go API form.
	rid, err := e.srv.InjectReport(Report{Mailbox: "x26abc2", Code: "EPL-151", Description: "No mailbox matched"})
	if err != nil {
		t.Fatal(err)
	}
	if inbox := e.srv.Inbox("X26ABC2"); len(inbox) != 1 || inbox[0].ID != rid || inbox[0].Headers["mex-statusevent"] != "SEND" {
		t.Fatalf("inbox %+v", inbox)
	}
}

func TestTrackingEventsViaAdmin(t *testing.T) {
	e := newEnv(t, nil)
	id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
	r := e.req(http.MethodPost, "/admin/message/"+id+"/event", "", nil, []byte(`{"status":"error","code":"99","event":"TRANSFER","description":"boom"}`))
	wantStatus(t, r, 200)
	tr := e.tracking("X26ABC1", id, v2).json(t)
	if tr["status"] != "error" || tr["status_code"] != "99" || tr["status_event"] != "TRANSFER" || tr["status_description"] != "boom" || tr["status_success"] != false {
		t.Fatalf("tracking %v", tr)
	}
	tr1 := e.tracking("X26ABC1", id, v1).json(t)
	if tr1["status"] != "Error" || tr1["statusSuccess"] != "ERROR" || tr1["failureDiagnostic"] != "boom" {
		t.Fatalf("v1 tracking %v", tr1)
	}
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id, "X26ABC2", nil, nil), 410)
	wantStatus(t, e.req(http.MethodPost, "/admin/message/"+id+"/event", "", nil, []byte(`{"status":"bogus"}`)), 400)
	wantStatus(t, e.req(http.MethodPost, "/admin/message/20200101000000000000_ABCDEF/event", "", nil, []byte(`{"status":"error"}`)), 404)
	if err := e.srv.SetTrackingEvent(id, TrackingEvent{Status: "acknowledged"}); err != nil {
		t.Fatal(err)
	}
	if st := e.tracking("X26ABC1", id, v2).json(t)["status"]; st != "acknowledged" {
		t.Fatalf("status %v", st)
	}
	r = e.req(http.MethodGet, "/admin/message/"+id, "", nil, nil)
	wantStatus(t, r, 200)
	if m := r.json(t); m["id"] != id || m["acknowledged"] != true {
		t.Fatalf("admin message %s", r.body)
	}
}

func TestResetAndAdminMailbox(t *testing.T) {
	e := newEnv(t, nil)
	e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), nil)
	e.send("X26ABC1", "X26ABC3", "TEST_WORKFLOW", []byte("y"), nil)
	r := e.req(http.MethodGet, "/admin/mailbox/X26ABC2", "", nil, nil)
	if m := r.json(t); m["inbox_count"] != 1.0 {
		t.Fatalf("admin mailbox %s", r.body)
	}
	wantStatus(t, e.req(http.MethodDelete, "/messageexchange/admin/reset/X26ABC2", "", nil, nil), 200)
	if len(e.srv.Inbox("X26ABC2")) != 0 || len(e.srv.Inbox("X26ABC3")) != 1 {
		t.Fatal("per-mailbox reset removed the wrong messages")
	}
	wantStatus(t, e.req(http.MethodDelete, "/admin/reset", "", nil, nil), 200)
	if len(e.srv.Inbox("X26ABC3")) != 0 || e.srv.Stats().Sends != 0 {
		t.Fatal("full reset left messages or stats")
	}
	wantStatus(t, e.req(http.MethodGet, "/admin/mailbox/NOPE", "", nil, nil), 404)
}

func TestExpireUncollected(t *testing.T) {
	e := newEnv(t, nil)
	old := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("x"), map[string]string{"mex-LocalID": "L-old"})
	e.clock.Advance(3 * 24 * time.Hour)
	fresh := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("y"), nil)
	if n := e.srv.ExpireUncollected(); n != 0 {
		t.Fatalf("expired %d before 5 days", n)
	}
	e.clock.Advance(2*24*time.Hour + time.Minute)
	if n := e.srv.ExpireUncollected(); n != 1 {
		t.Fatalf("expired %d, want 1", n)
	}
	if ids := e.inboxIDs("X26ABC2"); len(ids) != 1 || ids[0] != fresh {
		t.Fatalf("recipient inbox %v, want only %s", ids, fresh)
	}
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+old, "X26ABC2", nil, nil), 410)
	ids := e.inboxIDs("X26ABC1")
	if len(ids) != 1 {
		t.Fatalf("sender inbox %v, want one code 14 report", ids)
	}
	r := e.req(http.MethodGet, "/messageexchange/X26ABC1/inbox/"+ids[0], "X26ABC1", nil, nil)
	if r.header.Get("Mex-Statuscode") != "14" || r.header.Get("Mex-Linkedmsgid") != old ||
		r.header.Get("Mex-Statusdescription") != "Message not collected by recipient after 5 days" || r.header.Get("Mex-Localid") != "L-old" {
		t.Fatalf("report headers %v", r.header)
	}
	if tr := e.tracking("X26ABC1", old, v2).json(t); tr["status"] != "undeliverable" || tr["status_code"] != "14" {
		t.Fatalf("tracking %v", tr)
	}
	// Records are deleted after MessageExpiry (30 days).
	e.clock.Advance(31 * 24 * time.Hour)
	e.srv.ExpireUncollected()
	if _, _, ok := e.srv.Message(old); ok {
		t.Fatal("message kept beyond MessageExpiry")
	}
}

func TestLoadConfigFile(t *testing.T) {
	cfg, err := LoadConfigFile("example-config.yaml")
	if err != nil {
		t.Fatalf("example-config.yaml: %v", err)
	}
	if cfg.SharedKey != DemoSharedKey || len(cfg.Mailboxes) == 0 || len(cfg.Patients) == 0 || cfg.InboxExpiry != 5*24*time.Hour || cfg.Faults.Latency != 0 {
		t.Fatalf("example config %+v", cfg)
	}
	if _, err := New(cfg); err != nil {
		t.Fatalf("New(example): %v", err)
	}
	def := DefaultConfig()
	if !reflect.DeepEqual(cfg.Mailboxes, def.Mailboxes) || !reflect.DeepEqual(cfg.Workflows, def.Workflows) || !reflect.DeepEqual(cfg.Patients, def.Patients) {
		t.Fatal("example-config.yaml no longer matches DefaultConfig()")
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonPath := write("c.json", `{"sharedKey":"k","mailboxes":[{"id":"a1","password":"p","odsCode":"A"}],"faults":{"errorRate":0.1,"latency":"5ms"}}`)
	cfg, err = LoadConfigFile(jsonPath)
	if err != nil || cfg.Faults.Latency != 5*time.Millisecond || cfg.Mailboxes[0].ODSCode != "A" {
		t.Fatalf("json config %+v err %v", cfg, err)
	}
	bad := []struct{ name, body string }{
		{"unknown.yaml", "sharedKey: k\nmailboxz: []\n"},
		{"nombox.yaml", "sharedKey: k\n"},
		{"badwf.yaml", "sharedKey: k\nmailboxes: [{id: A}]\nworkflows: [{id: W, senders: [B]}]\n"},
		{"baddob.yaml", "sharedKey: k\nmailboxes: [{id: A}]\npatients: [{nhsNumber: '9000000009', birthDate: '26011967x', surname: S, mailbox: A}]\n"},
		{"badauth.yaml", "sharedKey: k\nauthMode: maybe\nmailboxes: [{id: A}]\n"},
		{"c.txt", "x"},
	}
	for _, b := range bad {
		if _, err := LoadConfigFile(write(b.name, b.body)); err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
}
