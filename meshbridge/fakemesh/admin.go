package fakemesh

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

// handleAdmin serves the test-only routes (no authentication), mirroring the
// sandbox's admin API; path is what follows "/admin/".
//
//	DELETE /admin/reset                    DELETE /admin/reset/{mailbox}
//	POST   /admin/report                   POST   /admin/message/{id}/event
//	GET    /admin/mailbox/{id}             GET    /admin/message/{id}
//	GET|PUT /admin/faults
//
// Each is also served under /messageexchange/admin/.
func (s *Server) handleAdmin(c *call, path string) {
	c.ver = 2
	p := strings.Split(strings.Trim(path, "/"), "/")
	method := c.r.Method
	switch {
	case p[0] == "reset" && len(p) <= 2 && method == http.MethodDelete:
		mb := ""
		if len(p) == 2 {
			mb = p[1]
		}
		s.Reset(mb)
		writeJSON(c, http.StatusOK, []byte(`{"reset":true}`))
	case p[0] == "report" && len(p) == 1 && method == http.MethodPost:
		var r Report
		if !decodeAdmin(c, &r, false) {
			return
		}
		id, err := s.InjectReport(r)
		if err != nil {
			writeAdminError(c, err)
			return
		}
		writeAdminJSON(c, http.StatusOK, map[string]string{"message_id": id})
	case p[0] == "message" && len(p) == 3 && p[2] == "event" && method == http.MethodPost:
		var ev TrackingEvent
		if !decodeAdmin(c, &ev, false) {
			return
		}
		if err := s.SetTrackingEvent(p[1], ev); err != nil {
			writeAdminError(c, err)
			return
		}
		writeAdminJSON(c, http.StatusOK, map[string]string{"message_id": strings.ToUpper(p[1]), "status": strings.ToLower(ev.Status)})
	case p[0] == "message" && len(p) == 2 && method == http.MethodGet:
		info, _, ok := s.Message(p[1])
		if !ok {
			writeError(c, http.StatusNotFound, errNotExist)
			return
		}
		writeAdminJSON(c, http.StatusOK, info)
	case p[0] == "mailbox" && len(p) == 2 && method == http.MethodGet:
		mb := s.mailboxes[strings.ToUpper(p[1])]
		if mb == nil {
			writeError(c, http.StatusNotFound, apiError{desc: "Mailbox does not exist"})
			return
		}
		inbox := s.Inbox(mb.id)
		ids := make([]string, 0, len(inbox))
		for _, m := range inbox {
			ids = append(ids, m.ID)
		}
		writeAdminJSON(c, http.StatusOK, struct {
			MailboxID   string   `json:"mailbox_id"`
			MailboxName string   `json:"mailbox_name"`
			ODSCode     string   `json:"ods_code"`
			InboxCount  int      `json:"inbox_count"`
			Inbox       []string `json:"inbox"`
		}{mb.id, mb.Name, mb.ODSCode, len(ids), ids})
	case p[0] == "faults" && len(p) == 1 && method == http.MethodPut:
		var doc faultsDoc
		if !decodeAdmin(c, &doc, true) {
			return
		}
		f := doc.faults()
		if err := f.validate(); err != nil {
			writeAdminError(c, err)
			return
		}
		s.SetFaults(f)
		s.log.Info("fakemesh faults set", "error_rate", f.ErrorRate, "drop_rate", f.DropRate, "latency", f.Latency, "seed", f.Seed)
		writeAdminJSON(c, http.StatusOK, faultsView(s.faults.get()))
	case p[0] == "faults" && len(p) == 1 && method == http.MethodGet:
		writeAdminJSON(c, http.StatusOK, faultsView(s.faults.get()))
	case p[0] == "stats" && len(p) == 1 && method == http.MethodGet:
		writeAdminJSON(c, http.StatusOK, s.Stats())
	default:
		writeNotFound(c)
	}
}

func faultsView(f Faults) map[string]any {
	return map[string]any{
		"errorRate": f.ErrorRate, "statuses": f.Statuses, "dropRate": f.DropRate,
		"latency": f.Latency.String(), "seed": f.Seed,
	}
}

// decodeAdmin reads a JSON request body into v. The sandbox's own endpoints
// (report, message event) ignore unknown fields as its pydantic models do;
// strict is for this server's extensions (faults), where a misspelt setting
// silently doing nothing would mislead a test.
func decodeAdmin(c *call, v any, strict bool) bool {
	dec := json.NewDecoder(io.LimitReader(c.r.Body, 1<<20))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		writeError(c, http.StatusBadRequest, apiError{desc: "invalid JSON body: " + err.Error()})
		return false
	}
	return true
}

func writeAdminError(c *call, err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrUnknownMessage) || errors.Is(err, ErrUnknownMailbox) {
		status = http.StatusNotFound
	}
	writeError(c, status, apiError{desc: err.Error()})
}

func writeAdminJSON(c *call, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(c, http.StatusInternalServerError, apiError{desc: "encode response"})
		return
	}
	c.w.Header()["Content-Type"] = []string{"application/json"}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(body)
}
