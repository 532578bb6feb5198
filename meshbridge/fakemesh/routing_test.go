package fakemesh

import (
	"net/http"
	"testing"

	"github.com/meshgateway/gateway/itk"
)

func TestValidNHSNumber(t *testing.T) {
	for nhs, want := range map[string]bool{
		"9000000009": true, "9000000017": true, "9000000025": true, "9000000033": true, "9000000041": true,
		"9000000068": true, "1234567890": false, "9000000010": false, "900000000": false, "90000000AA": false,
	} {
		if got := itk.ValidNHSNumber(nhs); got != want {
			t.Errorf("itk.ValidNHSNumber(%s) = %v, want %v", nhs, got, want)
		}
	}
	for _, p := range DefaultConfig().Patients {
		if !itk.ValidNHSNumber(p.NHSNumber) {
			t.Errorf("demo patient row with invalid NHS number")
		}
	}
}

func TestGPProviderRoutingSuccess(t *testing.T) {
	e := newEnv(t, nil)
	var hooked []MessageInfo
	e.srv.OnMessage(func(m MessageInfo) { hooked = append(hooked, m) })
	id := e.send("X26ABC1", "GPPROVIDER_9000000009_19670126_Smith", "GPCONNECT_SEND_DOCUMENT", []byte("<Bundle/>"), nil)
	ids := e.inboxIDs("X26GP001")
	if len(ids) != 1 || ids[0] != id {
		t.Fatalf("practice inbox %v, want [%s]", ids, id)
	}
	r := e.req(http.MethodGet, "/messageexchange/X26GP001/inbox/"+id, "X26GP001", nil, nil)
	wantStatus(t, r, 200)
	// The practice mailbox replaces the patient details.
	if r.header.Get("Mex-To") != "X26GP001" {
		t.Fatalf("mex-to %q", r.header.Get("Mex-To"))
	}
	if tr := e.tracking("X26ABC1", id, v2).json(t); tr["recipient"] != "X26GP001" || tr["status"] != "accepted" {
		t.Fatalf("tracking %v", tr)
	}
	if len(hooked) != 1 || hooked[0].ID != id || hooked[0].To != "X26GP001" {
		t.Fatalf("OnMessage calls %+v", hooked)
	}
	if got := e.inboxIDs("X26ABC1"); len(got) != 0 {
		t.Fatalf("sender got reports on success: %v", got)
	}
}

func TestGPProviderRoutingFailuresReport(t *testing.T) {
	tests := []struct {
		name, to, code, desc string
	}{
		{"invalid NHS number", "GPPROVIDER_1234567890_19670126_SMITH", "EPL-152", "Invalid NHS Number"},
		{"short NHS number", "GPPROVIDER_900000000_19670126_SMITH", "EPL-152", "Invalid NHS Number"},
		{"unknown NHS number", "GPPROVIDER_9000000068_19670126_SMITH", "EPL-153", "NHS Number not found"},
		{"wrong birth date", "GPPROVIDER_9000000009_19670127_SMITH", "EPL-154", "NHS Number supplied does not match the demographics"},
		{"DDMMYYYY birth date", "GPPROVIDER_9000000009_26011967_SMITH", "EPL-154", "NHS Number supplied does not match the demographics"},
		{"wrong surname", "GPPROVIDER_9000000009_19670126_SMYTHE", "EPL-154", "NHS Number supplied does not match the demographics"},
		{"no practice mailbox", "GPPROVIDER_9000000033_19800101_TAYLOR", "EPL-151", "No mailbox matched"},
		{"forced multiple mailboxes", "GPPROVIDER_9000000041_19900505_BROWN", "EPL-150", "Multiple mailboxes matches"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			// Accepted with 202 like real MESH; the failure arrives as a REPORT.
			id := e.send("X26ABC1", tc.to, "GPCONNECT_SEND_DOCUMENT", []byte("<Bundle/>"), map[string]string{"mex-LocalID": "X26", "mex-Subject": "subj"})
			ids := e.inboxIDs("X26ABC1")
			if len(ids) != 1 {
				t.Fatalf("sender inbox %v, want one report", ids)
			}
			rep := ids[0]
			r := e.req(http.MethodGet, "/messageexchange/X26ABC1/inbox/"+rep, "X26ABC1", nil, nil)
			wantStatus(t, r, 200)
			want := map[string]string{
				"Mex-Messagetype": "REPORT", "Mex-Linkedmsgid": id, "Mex-Statuscode": tc.code, "Mex-Statusevent": "SEND",
				"Mex-Statussuccess": "ERROR", "Mex-Statusdescription": tc.desc, "Mex-Workflowid": "GPCONNECT_SEND_DOCUMENT",
				"Mex-Localid": "X26", "Mex-Subject": "subj", "Mex-To": "X26ABC1", "Mex-Chunk-Range": "1:0",
				"Mex-Messageid": rep, "Content-Length": "0",
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("report header %s = %q, want %q", k, got, v)
				}
			}
			if len(r.body) != 0 {
				t.Errorf("report body %q", r.body)
			}
			tr := e.tracking("X26ABC1", id, v2).json(t)
			if tr["status"] != "error" || tr["status_code"] != tc.code || tr["status_success"] != false || tr["recipient"] != nil {
				t.Errorf("tracking %v", tr)
			}
			// Reports are acknowledged like any message.
			wantStatus(t, e.req(http.MethodPut, "/messageexchange/X26ABC1/inbox/"+rep+"/status/acknowledged", "X26ABC1", nil, nil), 200)
			if ids := e.inboxIDs("X26ABC1"); len(ids) != 0 {
				t.Errorf("report still in inbox after ack: %v", ids)
			}
			for _, mb := range []string{"X26GP001", "X26GP002"} {
				if ids := e.inboxIDs(mb); len(ids) != 0 {
					t.Errorf("%s received a failed message: %v", mb, ids)
				}
			}
		})
	}
}

func TestGPProviderPrefixMustBeUpperCase(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1",
		map[string]string{"Accept": v2, "mex-To": "gpprovider_9000000009_19670126_SMITH", "mex-WorkflowID": "GPCONNECT_SEND_DOCUMENT"}, []byte("x"))
	wantStatus(t, r, 417)
	wantBody(t, r, `{"detail":[{"event":"SEND","code":"12","msg":"Unregistered to address"}]}`)
}

func TestGPProviderChunkedFailureReportsWhenComplete(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1", map[string]string{
		"Accept": v2, "mex-To": "GPPROVIDER_9000000068_19670126_SMITH", "mex-WorkflowID": "GPCONNECT_SEND_DOCUMENT", "mex-Chunk-Range": "1:2",
	}, []byte("a"))
	wantStatus(t, r, 202)
	id := r.json(t)["message_id"].(string)
	if ids := e.inboxIDs("X26ABC1"); len(ids) != 0 {
		t.Fatalf("report before upload complete: %v", ids)
	}
	wantStatus(t, e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox/"+id+"/2", "X26ABC1", map[string]string{"mex-Chunk-Range": "2:2"}, []byte("b")), 202)
	ids := e.inboxIDs("X26ABC1")
	if len(ids) != 1 {
		t.Fatalf("sender inbox %v", ids)
	}
	info, _, _ := e.srv.Message(ids[0])
	if info.MessageType != TypeReport || info.LinkedMessageID != id || info.StatusCode != "EPL-153" {
		t.Fatalf("report %+v", info)
	}
}
