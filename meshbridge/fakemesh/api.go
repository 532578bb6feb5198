package fakemesh

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MessageInfo describes a stored message for test assertions and hooks.
// Subject may carry patient data: never log it.
type MessageInfo struct {
	ID                string            `json:"id"`
	From              string            `json:"from"`
	To                string            `json:"to"`
	WorkflowID        string            `json:"workflowId"`
	MessageType       string            `json:"messageType"` // DATA or REPORT
	Status            string            `json:"status"`
	StatusCode        string            `json:"statusCode,omitempty"`
	StatusEvent       string            `json:"statusEvent,omitempty"`
	StatusDescription string            `json:"statusDescription,omitempty"`
	LinkedMessageID   string            `json:"linkedMessageId,omitempty"`
	LocalID           string            `json:"localId,omitempty"`
	Subject           string            `json:"subject,omitempty"`
	FileName          string            `json:"fileName,omitempty"`
	ContentType       string            `json:"contentType,omitempty"`
	ContentEncoding   string            `json:"contentEncoding,omitempty"`
	ChunkCount        int               `json:"chunkCount"`
	ChunksReceived    int               `json:"chunksReceived"`
	StoredBytes       int64             `json:"storedBytes"`
	Headers           map[string]string `json:"headers"` // chunk-1 download headers, lower-case names
	Acknowledged      bool              `json:"acknowledged"`
	Created           time.Time         `json:"created"`
	AcknowledgedAt    time.Time         `json:"acknowledgedAt,omitzero"`
}

func (m *message) info() MessageInfo {
	hdrs := m.downloadHeaders(1)
	hm := make(map[string]string, len(hdrs))
	for _, h := range hdrs {
		hm[h.name] = h.value
	}
	return MessageInfo{
		ID: m.id, From: m.sender, To: m.recipient, WorkflowID: m.workflow, MessageType: m.msgType,
		Status: m.status, StatusCode: m.statusCode, StatusEvent: m.statusEvent, StatusDescription: m.statusDesc,
		LinkedMessageID: m.linkedID, LocalID: m.localID, Subject: m.subject, FileName: m.fileName,
		ContentType: m.responseContentType(), ContentEncoding: m.contentEncoding,
		ChunkCount: m.totalChunks, ChunksReceived: m.received, StoredBytes: m.storedBytes, Headers: hm,
		Acknowledged: m.status == StatusAcknowledged, Created: m.created, AcknowledgedAt: m.ackedAt,
	}
}

// Report describes a REPORT message to inject into a mailbox (like the
// sandbox's POST /messageexchange/admin/report).
type Report struct {
	Mailbox         string `json:"mailbox_id"`
	Code            string `json:"code"`
	Description     string `json:"description"`
	Event           string `json:"event"` // default SEND (TRANSFER for code 14)
	WorkflowID      string `json:"workflow_id"`
	Subject         string `json:"subject"`
	LocalID         string `json:"local_id"`
	FileName        string `json:"file_name"`
	LinkedMessageID string `json:"linked_message_id"`
	Status          string `json:"status"` // "error" (default) or "undeliverable"
}

// TrackingEvent drives a message's tracking status (like the sandbox's
// POST /admin/message/{id}/event).
type TrackingEvent struct {
	Status          string `json:"status"` // uploading, accepted, acknowledged, error, undeliverable
	Code            string `json:"code"`
	Event           string `json:"event"`
	Description     string `json:"description"`
	LinkedMessageID string `json:"linked_message_id"`
}

// Errors returned by the test-control API.
var (
	ErrUnknownMailbox = errors.New("fakemesh: unknown mailbox")
	ErrUnknownMessage = errors.New("fakemesh: unknown message")
	ErrBadStatus      = errors.New("fakemesh: invalid status")
)

// Reset deletes all messages ("" ) or those sent to or by one mailbox. A full
// reset also forgets used tokens and zeroes Stats.
func (s *Server) Reset(mailbox string) {
	mailbox = strings.ToUpper(strings.TrimSpace(mailbox))
	s.mu.Lock()
	if mailbox == "" {
		s.messages = make(map[string]*message)
		s.inboxes = make(map[string]*inbox)
	} else {
		for id, m := range s.messages {
			if m.recipient == mailbox || m.sender == mailbox {
				if ib := s.inboxes[m.recipient]; ib != nil {
					ib.remove(m)
				}
				delete(s.messages, id)
			}
		}
		delete(s.inboxes, mailbox)
	}
	s.mu.Unlock()
	if mailbox == "" {
		s.replay.reset(s.now())
		s.stats.reset()
	}
	s.log.Info("fakemesh reset", "mailbox", mailbox)
}

// InjectReport puts a REPORT into r.Mailbox's inbox, as the sandbox's
// POST /messageexchange/admin/report does (mesh-api.md §4.1).
//
// Deliberate extension: when r.LinkedMessageID names a known DATA message,
// that message is also failed (tracking moves to r.Status with the report's
// code, event and description) and removed from its recipient's inbox. The
// sandbox leaves the linked message alone, but on real MESH an error REPORT
// (e.g. 14 not collected, EPL-151 no mailbox matched) means the message was
// not delivered, and tests rely on the two agreeing: meshbridge's
// client_fakemesh_test.go tracks the linked message as undeliverable after
// the report, and this package's admin tests check it left the inbox. A report
// whose linked id is unknown (or names a REPORT) only lands in the inbox.
func (s *Server) InjectReport(r Report) (string, error) {
	mb := strings.ToUpper(strings.TrimSpace(r.Mailbox))
	if _, ok := s.mailboxes[mb]; !ok {
		return "", fmt.Errorf("inject report: %w: %s", ErrUnknownMailbox, mb)
	}
	status := strings.ToLower(strings.TrimSpace(r.Status))
	if status == "" {
		status = StatusError
	}
	if status != StatusError && status != StatusUndeliverable {
		return "", fmt.Errorf("inject report: %w: %q (want error or undeliverable)", ErrBadStatus, r.Status)
	}
	event := r.Event
	if event == "" {
		event = "SEND"
		if r.Code == "14" {
			event = "TRANSFER"
		}
	}
	linked := strings.ToUpper(strings.TrimSpace(r.LinkedMessageID))
	now := s.now()
	s.mu.Lock()
	rep := s.addReportLocked(now, reportSpec{
		to: mb, code: r.Code, event: event, desc: r.Description, status: status,
		linkedID: linked, workflow: r.WorkflowID, localID: r.LocalID, subject: r.Subject, fileName: r.FileName,
	})
	if orig := s.messages[linked]; orig != nil && orig.msgType == TypeData {
		s.failLocked(orig, now, status, r.Code, event, r.Description)
	}
	s.mu.Unlock()
	return rep.id, nil
}

// failLocked moves a DATA message to error/undeliverable, removing it from
// the recipient inbox and freeing its body.
func (s *Server) failLocked(m *message, now time.Time, status, code, event, desc string) {
	m.status, m.statusCode, m.statusEvent, m.statusDesc = status, code, event, desc
	m.statusSuccess, m.failed, m.statusTime = false, true, now
	if ib := s.inboxes[m.recipient]; ib != nil {
		ib.remove(m)
	}
	m.freeBody()
}

var validStatuses = map[string]bool{
	StatusUploading: true, StatusAccepted: true, StatusAcknowledged: true, StatusError: true, StatusUndeliverable: true,
}

// SetTrackingEvent sets a message's tracking status, as the sandbox's admin
// event endpoint does. error/undeliverable remove it from the recipient's inbox.
func (s *Server) SetTrackingEvent(messageID string, ev TrackingEvent) error {
	status := strings.ToLower(strings.TrimSpace(ev.Status))
	if !validStatuses[status] {
		return fmt.Errorf("set tracking event: %w: %q", ErrBadStatus, ev.Status)
	}
	id := strings.ToUpper(strings.TrimSpace(messageID))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.messages[id]
	if m == nil {
		return fmt.Errorf("set tracking event: %w: %s", ErrUnknownMessage, id)
	}
	if ev.LinkedMessageID != "" {
		m.linkedID = strings.ToUpper(ev.LinkedMessageID)
	}
	switch status {
	case StatusError, StatusUndeliverable:
		event := ev.Event
		if event == "" {
			event = "SEND"
		}
		s.failLocked(m, now, status, ev.Code, event, ev.Description)
	case StatusAcknowledged:
		m.status, m.ackedAt, m.statusTime = status, now, now
		if ib := s.inboxes[m.recipient]; ib != nil {
			ib.remove(m)
		}
		m.freeBody()
	default:
		m.status, m.statusTime = status, now
		m.statusCode, m.statusEvent, m.statusDesc = ev.Code, ev.Event, ev.Description
		m.failed = false
	}
	return nil
}

// SetFaults replaces the fault-injection settings (and reseeds the generator).
func (s *Server) SetFaults(f Faults) { s.faults.set(f) }

// ExpireUncollected removes DATA messages left uncollected for longer than
// InboxExpiry, marks them undeliverable and sends the sender a code 14
// REPORT; it also deletes records older than MessageExpiry. It returns the
// number of messages expired from inboxes.
func (s *Server) ExpireUncollected() int {
	now := s.now()
	days := strconv.Itoa(int(s.inboxTTL.Hours() / 24))
	desc := "Message not collected by recipient after " + days + " days"
	expired := 0
	s.mu.Lock()
	for id, m := range s.messages {
		if now.Sub(m.created) > s.msgTTL {
			if ib := s.inboxes[m.recipient]; ib != nil {
				ib.remove(m)
			}
			delete(s.messages, id)
			continue
		}
		if m.msgType != TypeData || m.status != StatusAccepted || now.Sub(m.statusTime) <= s.inboxTTL {
			continue
		}
		s.failLocked(m, now, StatusUndeliverable, "14", "TRANSFER", desc)
		if m.sender != "" {
			s.addReportLocked(now, reportSpec{
				to: m.sender, code: "14", event: "TRANSFER", desc: desc, status: StatusUndeliverable,
				linkedID: m.id, workflow: m.workflow, localID: m.localID, subject: m.subject,
			})
		}
		expired++
	}
	s.mu.Unlock()
	if expired > 0 {
		s.log.Info("fakemesh expired uncollected messages", "count", expired)
	}
	return expired
}

// Inbox lists the messages currently in a mailbox's inbox, oldest first.
func (s *Server) Inbox(mailbox string) []MessageInfo {
	mailbox = strings.ToUpper(strings.TrimSpace(mailbox))
	s.mu.Lock()
	defer s.mu.Unlock()
	ib := s.inboxes[mailbox]
	if ib == nil {
		return nil
	}
	out := make([]MessageInfo, 0, ib.live)
	for _, e := range ib.items[ib.head:] {
		if e.alive() {
			out = append(out, e.m.info())
		}
	}
	return out
}

// Message returns a message's metadata and its reassembled, decoded body
// (nil once acknowledged or expired: bodies are freed then).
func (s *Server) Message(id string) (MessageInfo, []byte, bool) {
	id = strings.ToUpper(strings.TrimSpace(id))
	s.mu.Lock()
	m := s.messages[id]
	if m == nil {
		s.mu.Unlock()
		return MessageInfo{}, nil, false
	}
	info := m.info()
	// Copy the slice header array: chunk uploads may fill other slots concurrently.
	var chunks [][]byte
	if m.chunks != nil {
		chunks = append(make([][]byte, 0, len(m.chunks)), m.chunks...)
	}
	enc := m.contentEncoding
	s.mu.Unlock()
	if chunks == nil || info.MessageType != TypeData {
		return info, nil, true
	}
	// Decode outside the lock: chunk slices are immutable once stored.
	tmp := message{chunks: chunks, contentEncoding: enc}
	return info, tmp.decodedBody(), true
}
