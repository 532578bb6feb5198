package fakemesh

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

var messageIDPattern = regexp.MustCompile(`^\d{20}_[0-9A-F]{6}$`)

func TestVersioningAndHandshake(t *testing.T) {
	e := newEnv(t, nil)
	hs := func(accept string) map[string]string {
		h := map[string]string{"mex-ClientVersion": "test==1", "mex-OSName": "Linux", "mex-OSVersion": "6"}
		if accept != "" {
			h["Accept"] = accept
		}
		return h
	}
	tests := []struct {
		name   string
		method string
		hdr    map[string]string
		status int
		body   string
	}{
		{"no accept is v1", http.MethodGet, hs(""), 200, `{"mailboxId":"X26ABC1"}`},
		{"application/json is v1", http.MethodPost, hs("application/json"), 200, `{"mailboxId":"X26ABC1"}`},
		{"explicit v1", http.MethodGet, hs(v1), 200, `{"mailboxId":"X26ABC1"}`},
		{"v2 empty body", http.MethodPost, hs(v2), 200, ``},
		{"malformed vnd.mesh", http.MethodGet, hs("application/vnd.mesh.vX+json"), 400, `{"errorDescription":"Accept header api format incorrect"}`},
		{"missing mex headers", http.MethodGet, map[string]string{"Accept": v2}, 400,
			`{"detail":[{"loc":["header","mex-clientversion"],"msg":"field required","type":"value_error.missing"},{"loc":["header","mex-osname"],"msg":"field required","type":"value_error.missing"},{"loc":["header","mex-osversion"],"msg":"field required","type":"value_error.missing"}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req(tc.method, "/messageexchange/X26ABC1", "X26ABC1", tc.hdr, nil)
			wantStatus(t, r, tc.status)
			wantBody(t, r, tc.body)
		})
	}
}

func TestPingAndUnknownRoutes(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"/messageexchange/_ping", "/health", "/_ping"} {
		wantStatus(t, e.req(http.MethodGet, p, "", nil, nil), 200)
	}
	wantStatus(t, e.req(http.MethodGet, "/nothing", "", nil, nil), 404)
	wantStatus(t, e.req(http.MethodDelete, "/messageexchange/X26ABC1/inbox", "X26ABC1", nil, nil), 404)
}

func TestSendValidation(t *testing.T) {
	e := newEnv(t, nil)
	base := func(kv ...string) map[string]string {
		h := map[string]string{"mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<del>" {
				delete(h, kv[i])
				continue
			}
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	body := []byte("hello")
	tests := []struct {
		name   string
		from   string
		accept string
		hdr    map[string]string
		body   []byte
		status int
		want   string // exact body, or "" to skip
	}{
		{"v2 ok", "X26ABC1", v2, base(), body, 202, ""},
		{"v1 ok", "X26ABC1", v1, base(), body, 202, ""},
		{"missing mex-To", "X26ABC1", v2, base("mex-To", "<del>"), body, 400,
			`{"detail":[{"loc":["header","mex-to"],"msg":"field required","type":"value_error.missing"}]}`},
		{"missing workflow", "X26ABC1", v2, base("mex-WorkflowID", "<del>"), body, 400,
			`{"detail":[{"loc":["header","mex-workflowid"],"msg":"field required","type":"value_error.missing"}]}`},
		{"control char", "X26ABC1", v2, base("mex-Subject", "a\tb"), body, 400,
			`{"detail":[{"event":"TRANSFER","code":"06","msg":"MalformedControlFile"}]}`},
		{"control char v1 fields", "X26ABC1", v1, base("mex-LocalID", "a\tb"), body, 400,
			`{"errorEvent":"TRANSFER","errorCode":"06","errorDescription":"MalformedControlFile","fields":["mex-localid"]}`},
		{"url in mex-To", "X26ABC1", v2, base("mex-To", "https://evil"), body, 400,
			`{"detail":[{"event":"TRANSFER","code":"06","msg":"MalformedControlFile"}]}`},
		{"url in workflow", "X26ABC1", v2, base("mex-WorkflowID", "http://x"), body, 400, ""},
		{"bad checksum chars", "X26ABC1", v2, base("mex-Content-Checksum", "md5=abc"), body, 400,
			`{"detail":[{"event":"SEND","code":"Invalid checksum","msg":"Invalid checksum"}]}`},
		{"good checksum", "X26ABC1", v2, base("mex-Content-Checksum", "md5:ABC-1/2 x"), body, 202, ""},
		{"subject too long", "X26ABC1", v2, base("mex-Subject", strings.Repeat("s", 501)), body, 400, ""},
		{"brotli", "X26ABC1", v2, base("Content-Encoding", "br"), body, 422,
			`{"detail":[{"event":"SEND","code":"UnsupportedContentEncoding","msg":"Unsupported content encoding"}]}`},
		{"chunk range 2:3 on outbox", "X26ABC1", v2, base("mex-Chunk-Range", "2:3"), body, 417,
			`{"detail":[{"event":"SEND","code":"InvalidHeaderChunks","msg":"Invalid chunk values sent in mex-Chunk-Range header"}]}`},
		{"chunk range garbage", "X26ABC1", v2, base("mex-Chunk-Range", "1-3"), body, 417, ""},
		{"unknown recipient v2", "X26ABC1", v2, base("mex-To", "NOBODY"), body, 417,
			`{"detail":[{"event":"SEND","code":"12","msg":"Unregistered to address"}]}`},
		{"unknown recipient v1", "X26ABC1", v1, base("mex-To", "NOBODY"), body, 417,
			`{"errorEvent":"SEND","errorCode":"12","errorDescription":"Unregistered to address"}`},
		{"mex-To trimmed and upper-cased", "X26ABC1", v2, base("mex-To", "  x26abc2 "), body, 202, ""},
		{"empty body", "X26ABC1", v2, base(), []byte{}, 417,
			`{"detail":[{"event":"COLLECT","code":"02","msg":"Data file is missing or inaccessible."}]}`},
		{"mex-From mismatch", "X26ABC1", v2, base("mex-From", "X26ABC3"), body, 417,
			`{"detail":[{"event":"SEND","code":"07","msg":"Invalid From Address in the control file"}]}`},
		{"mex-From matching", "X26ABC1", v2, base("mex-From", "x26abc1"), body, 202, ""},
		{"sender not on workflow", "X26ABC3", v2, base("mex-To", "X26GP001", "mex-WorkflowID", "GPCONNECT_SEND_DOCUMENT"), body, 417,
			`{"detail":[{"event":"SEND","code":"17","msg":"Workflow ID not registered for mailbox"}]}`},
		{"sender on workflow", "X26ABC1", v2, base("mex-To", "X26GP001", "mex-WorkflowID", "GPCONNECT_SEND_DOCUMENT"), body, 202, ""},
		{"unconfigured workflow allowed", "X26ABC3", v2, base("mex-WorkflowID", "SOMETHING_ELSE"), body, 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.hdr
			h["Accept"] = tc.accept
			r := e.req(http.MethodPost, "/messageexchange/"+tc.from+"/outbox", tc.from, h, tc.body)
			wantStatus(t, r, tc.status)
			if tc.want != "" {
				wantBody(t, r, tc.want)
			}
			if tc.status == 202 {
				key := "message_id"
				if tc.accept == v1 {
					key = "messageID"
				}
				id, _ := r.json(t)[key].(string)
				if !messageIDPattern.MatchString(id) {
					t.Fatalf("message id %q is not yyyyMMddHHmmssffffff_XXXXXX", id)
				}
			}
		})
	}
}

func TestSendDownloadAckTracking(t *testing.T) {
	e := newEnv(t, nil)
	id := e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte(`{"hello":"world"}`), map[string]string{
		"mex-LocalID": "local-1", "mex-Subject": "hi", "mex-FileName": "a.json",
		"mex-Content-Encrypted": "N", "mex-Content-Compressed": "Y", "mex-Content-Checksum": "md5:abc",
	})

	if got := e.inboxIDs("X26ABC2"); len(got) != 1 || got[0] != id {
		t.Fatalf("recipient inbox %v, want [%s]", got, id)
	}
	if got := e.inboxIDs("X26ABC1"); len(got) != 0 {
		t.Fatalf("sender inbox %v, want empty", got)
	}

	// v1 inbox and count shapes.
	r := e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox", "X26ABC2", nil, nil)
	wantBody(t, r, `{"messages":["`+id+`"]}`)
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "X26ABC2", map[string]string{"Accept": v2}, nil)
	wantBody(t, r, `{"count":1}`)
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "X26ABC2", nil, nil)
	if m := r.json(t); m["count"] != 1.0 || m["allResultsIncluded"] != true || m["internalID"] == "" {
		t.Fatalf("v1 count body %s", r.body)
	}

	// Tracking before ack: accepted (v2) / Accepted (v1).
	tr := e.tracking("X26ABC1", id, v2).json(t)
	if tr["status"] != "accepted" || tr["status_success"] != true || tr["recipient"] != "X26ABC2" || tr["local_id"] != "local-1" || tr["message_id"] != id {
		t.Fatalf("v2 tracking %v", tr)
	}
	tr1 := e.tracking("X26ABC1", id, "").json(t)
	if tr1["status"] != "Accepted" || tr1["statusSuccess"] != "SUCCESS" || tr1["messageType"] != "Data" || tr1["dtsId"] != id || tr1["version"] != "1.0" || tr1["sender"] != "X26ABC1" {
		t.Fatalf("v1 tracking %v", tr1)
	}
	// Only the sender may track: 404, not 403.
	wantStatus(t, e.tracking("X26ABC2", id, v2), 404)
	wantStatus(t, e.tracking("X26ABC1", "20200101000000000000_ABCDEF", v2), 404)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC1/outbox/tracking", "X26ABC1", nil, nil), 400)

	// Download: headers exactly as §1.4; ids accepted case-insensitively.
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+strings.ToLower(id), "X26ABC2", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 200)
	wantBody(t, r, `{"hello":"world"}`)
	want := map[string]string{
		"Content-Type": "application/fhir+json", "Mex-From": "X26ABC1", "Mex-To": "X26ABC2",
		"Mex-Workflowid": "TEST_WORKFLOW", "Mex-Chunk-Range": "1:1", "Mex-Total-Chunks": "1",
		"Mex-Addresstype": "ALL", "Mex-Localid": "local-1", "Mex-Filename": "a.json", "Mex-Subject": "hi",
		"Mex-Version": "1.0", "Mex-Messagetype": "DATA", "Mex-Messageid": id, "Mex-Statuscode": "00",
		"Mex-Statusevent": "TRANSFER", "Mex-Statusdescription": "Transferred to recipient mailbox",
		"Mex-Statussuccess": "SUCCESS", "Mex-Statustimestamp": "20261124192252",
		"Last-Modified": "Tue, 24 Nov 2026 19:22:52 UTC", "Mex-Content-Compressed": "Y",
		"Mex-Content-Checksum": "md5:abc", "Content-Length": "17",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if r.header.Get("Etag") == "" || r.header.Get("Mex-Content-Encrypted") != "" {
		t.Errorf("etag %q / encrypted %q", r.header.Get("Etag"), r.header.Get("Mex-Content-Encrypted"))
	}

	// HEAD: metadata only; sender may HEAD too; others get 404.
	r = e.req(http.MethodHead, "/messageexchange/X26ABC2/inbox/"+id, "X26ABC2", nil, nil)
	wantStatus(t, r, 200)
	if r.header.Get("Mex-Messageid") != id || len(r.body) != 0 {
		t.Fatalf("HEAD headers %v body %q", r.header, r.body)
	}
	wantStatus(t, e.req(http.MethodHead, "/messageexchange/X26ABC1/inbox/"+id, "X26ABC1", nil, nil), 200)
	wantStatus(t, e.req(http.MethodHead, "/messageexchange/X26ABC3/inbox/"+id, "X26ABC3", nil, nil), 404)

	// Non-recipient download 403; unknown 404 with RECEIVE/20.
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC3/inbox/"+id, "X26ABC3", nil, nil), 403)
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/20200101000000000000_ABCDEF", "X26ABC2", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 404)
	wantBody(t, r, `{"detail":[{"event":"RECEIVE","code":"20","msg":"Message does not exist"}]}`)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id+"/2", "X26ABC2", nil, nil), 404)

	// Ack: only the recipient; v1 and v2 bodies; removes from inbox; idempotent.
	ackPath := "/messageexchange/X26ABC2/inbox/" + id + "/status/acknowledged"
	wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC1/inbox/"+id+"/status/acknowledged", "X26ABC1", nil, nil), 403)
	r = e.req(http.MethodPut, ackPath, "X26ABC2", nil, nil)
	wantStatus(t, r, 200)
	wantBody(t, r, `{"messageId":"`+id+`"}`)
	r = e.req(http.MethodPut, ackPath, "X26ABC2", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 200)
	wantBody(t, r, ``)
	if got := e.inboxIDs("X26ABC2"); len(got) != 0 {
		t.Fatalf("inbox after ack %v", got)
	}
	wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/20200101000000000000_ABCDEF/status/acknowledged", "X26ABC2", nil, nil), 404)

	tr = e.tracking("X26ABC1", id, v2).json(t)
	if tr["status"] != "acknowledged" {
		t.Fatalf("tracking after ack %v", tr)
	}
	if tr1 := e.tracking("X26ABC1", id, v1).json(t); tr1["downloadTimestamp"] == "" || tr1["status"] != "Acknowledged" {
		t.Fatalf("v1 tracking after ack %v", tr1)
	}
	// The body is freed after ack: download is 410 Gone.
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id, "X26ABC2", nil, nil), 410)
	if _, body, ok := e.srv.Message(id); !ok || body != nil {
		t.Fatalf("Message after ack: ok=%v body=%q", ok, body)
	}
	st := e.srv.Stats()
	if st.Sends != 1 || st.Acks != 2 || st.Downloads != 1 || st.Requests["send 202"] != 1 || st.Requests["download 410"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestInboxPaginationAndFilter(t *testing.T) {
	e := newEnv(t, nil)
	var sent []string
	for i := 0; i < 25; i++ {
		wf := "TEST_WORKFLOW"
		if i%5 == 0 {
			wf = "OTHER_FLOW"
		}
		sent = append(sent, e.send("X26ABC1", "X26ABC2", wf, []byte("x"), nil))
	}
	// Follow links.next (a path, not a URL) page by page.
	var got []string
	path := "/messageexchange/X26ABC2/inbox?max_results=10"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not terminate")
		}
		r := e.req(http.MethodGet, path, "X26ABC2", map[string]string{"Accept": v2}, nil)
		wantStatus(t, r, 200)
		var body struct {
			Messages []string          `json:"messages"`
			Links    map[string]string `json:"links"`
			Approx   int               `json:"approx_inbox_count"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.Approx != 25 || body.Links["self"] != "/messageexchange/X26ABC2/inbox?max_results=10" {
			t.Fatalf("page %d: approx %d links %v", pages, body.Approx, body.Links)
		}
		got = append(got, body.Messages...)
		path = body.Links["next"]
		if path != "" && !strings.HasPrefix(path, "/messageexchange/X26ABC2/inbox?max_results=10&continue_from=") {
			t.Fatalf("next link %q", path)
		}
	}
	if strings.Join(got, ",") != strings.Join(sent, ",") {
		t.Fatalf("paged ids differ:\n got %v\nwant %v", got, sent)
	}

	// v1 continue_from takes a plain message id.
	r := e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox?max_results=10&continue_from="+sent[19], "X26ABC2", nil, nil)
	wantBody(t, r, `{"messages":["`+strings.Join(sent[20:], `","`)+`"]}`)

	// workflow_filter: exact, negated, prefix.
	count := func(filter string) int {
		r := e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox?workflow_filter="+filter, "X26ABC2", map[string]string{"Accept": v2}, nil)
		wantStatus(t, r, 200)
		return len(r.json(t)["messages"].([]any))
	}
	for filter, want := range map[string]int{"OTHER_FLOW": 5, "!OTHER_FLOW": 20, "TEST_*": 20, "*FLOW*": 25, "!*WORK*": 5} {
		if n := count(filter); n != want {
			t.Errorf("workflow_filter %s: %d messages, want %d", filter, n, want)
		}
	}

	// Parameter ranges.
	for _, q := range []string{"max_results=9", "max_results=5001", "max_results=x", "continue_from=short", "workflow_filter=A"} {
		r := e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox?"+q, "X26ABC2", nil, nil)
		wantStatus(t, r, 400)
		if !strings.Contains(string(r.body), `"loc":["query"`) {
			t.Errorf("%s: body %s", q, r.body)
		}
	}

	// Acked messages leave the listing; continue_from still works past them.
	for _, id := range sent[:12] {
		wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", "X26ABC2", nil, nil), 200)
	}
	if ids := e.inboxIDs("X26ABC2"); len(ids) != 13 || ids[0] != sent[12] {
		t.Fatalf("inbox after acks: %d ids, first %v", len(ids), ids[:1])
	}
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox?continue_from="+sent[5], "X26ABC2", nil, nil)
	if n := len(r.json(t)["messages"].([]any)); n != 13 {
		t.Fatalf("continue_from an acked id: %d messages, want 13", n)
	}
}

func TestTrackingByLocalID(t *testing.T) {
	e := newEnv(t, nil)
	e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("a"), map[string]string{"mex-LocalID": "once"})
	e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("b"), map[string]string{"mex-LocalID": "twice"})
	e.send("X26ABC1", "X26ABC2", "TEST_WORKFLOW", []byte("c"), map[string]string{"mex-LocalID": "twice"})
	r := e.req(http.MethodGet, "/messageexchange/X26ABC1/outbox/tracking/once", "X26ABC1", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 200)
	if m := r.json(t); m["localId"] != "once" || m["status"] != "Accepted" {
		t.Fatalf("local id tracking is v1 only: %s", r.body)
	}
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC1/outbox/tracking/twice", "X26ABC1", nil, nil), 300)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC1/outbox/tracking/never", "X26ABC1", nil, nil), 404)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/outbox/tracking/once", "X26ABC2", nil, nil), 404)
}

func TestEndpointLookupAndWorkflowSearch(t *testing.T) {
	e := newEnv(t, nil)
	// No Authorization header needed.
	r := e.req(http.MethodGet, "/messageexchange/endpointlookup/A81001/GPCONNECT_SEND_DOCUMENT", "", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 200)
	wantBody(t, r, `{"results":[{"mailbox_id":"X26GP001","mailbox_name":"Demo GP practice A81001"}]}`)
	r = e.req(http.MethodGet, "/messageexchange/endpointlookup/a81001/GPCONNECT_SEND_DOCUMENT", "", nil, nil)
	m := r.json(t)
	res := m["results"].([]any)
	if len(res) != 1 || res[0].(map[string]any)["address"] != "X26GP001" || res[0].(map[string]any)["endpoint_type"] != "MESH" || m["query_id"] == "" {
		t.Fatalf("v1 lookup %s", r.body)
	}
	r = e.req(http.MethodGet, "/messageexchange/endpointlookup/A81001/UNKNOWN_WF", "", map[string]string{"Accept": v2}, nil)
	wantBody(t, r, `{"results":[]}`)
	r = e.req(http.MethodGet, "/messageexchange/workflowsearch/TEST_WORKFLOW_ACK", "", nil, nil)
	wantBody(t, r, `{"results":[{"mailbox_id":"X26ABC1","mailbox_name":"Demo sender X26ABC1"},{"mailbox_id":"X26ABC3","mailbox_name":"Demo recipient X26ABC3"}]}`)
}
