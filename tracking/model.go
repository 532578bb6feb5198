// Package tracking holds the gateway's record of every accepted message: its
// state machine, event history and payload, kept in Redis.
package tracking

import "time"

// State is where a message is in its life. Transitions are compare-and-set.
type State string

const (
	StateAccepted  State = "accepted"  // durable in Redis, queued for MESH
	StateSending   State = "sending"   // first MESH chunk attempted
	StateSent      State = "sent"      // MESH answered 202 to every chunk; MeshMessageID known
	StateDelivered State = "delivered" // MESH tracking: recipient downloaded/acknowledged it
	StateInfAcked  State = "inf_acked" // positive ITK3 infrastructure ack (20013)
	StateBusAcked  State = "bus_acked" // positive ITK3 business ack (30001/30004): done

	StateRejected      State = "rejected"      // MESH refused the send (e.g. 417 code 12/17)
	StateUndeliverable State = "undeliverable" // MESH error REPORT (EPL-15x, 14 not collected, ...)
	StateInfNacked     State = "inf_nacked"    // negative ITK3 infrastructure ack (1xxxx/2xxxx)
	StateBusNacked     State = "bus_nacked"    // negative ITK3 business ack (30002/30003)
	StateFailed        State = "failed"        // gave up for another reason (see LastError)
)

// Terminal reports whether no further transition is expected.
func (s State) Terminal() bool {
	switch s {
	case StateBusAcked, StateRejected, StateUndeliverable, StateInfNacked, StateBusNacked, StateFailed:
		return true
	}
	return false
}

// Failed reports whether the state needs a person's attention.
func (s State) Failed() bool {
	switch s {
	case StateRejected, StateUndeliverable, StateInfNacked, StateBusNacked, StateFailed:
		return true
	}
	return false
}

// AllStates lists every state, in lifecycle order.
var AllStates = []State{
	StateAccepted, StateSending, StateSent, StateDelivered, StateInfAcked, StateBusAcked,
	StateRejected, StateUndeliverable, StateInfNacked, StateBusNacked, StateFailed,
}

// EventType names an entry in a message's history; webhook event types are
// "message." + EventType.
type EventType string

const (
	EventAccepted      EventType = "accepted"
	EventSendAttempt   EventType = "send_attempt" // first chunk about to be POSTed
	EventSendRetry     EventType = "send_retry"   // transient MESH failure, will retry
	EventResent        EventType = "resent"       // re-sent after an unconfirmed first chunk (same Bundle identifier)
	EventSent          EventType = "sent"
	EventDelivered     EventType = "delivered"
	EventInfAck        EventType = "infack"
	EventBusAck        EventType = "busack"
	EventRejected      EventType = "rejected"
	EventUndeliverable EventType = "undeliverable"
	EventFailed        EventType = "failed"
	EventAckOverdue    EventType = "ack_overdue"
)

// Event is one entry in a message's history. It never carries patient data.
type Event struct {
	Type          EventType `json:"type"`
	State         State     `json:"state"` // state after the event
	At            time.Time `json:"at"`
	Code          string    `json:"code,omitempty"`    // ITK3 response code or MESH error code
	Display       string    `json:"display,omitempty"` // code display / MESH description
	Diagnostics   string    `json:"diagnostics,omitempty"`
	MeshMessageID string    `json:"meshMessageId,omitempty"`
	Attempt       int       `json:"attempt,omitempty"`
}

// Ack is an ITK3 acknowledgement as recorded on the message.
type Ack struct {
	Code          string    `json:"code"`
	Display       string    `json:"display"`
	Positive      bool      `json:"positive"`
	Diagnostics   string    `json:"diagnostics,omitempty"`
	ReceivedAt    time.Time `json:"receivedAt"`
	MeshMessageID string    `json:"meshMessageId,omitempty"` // id of the ack message in our inbox
}

// MeshError is a MESH refusal or error REPORT as recorded on the message.
type MeshError struct {
	Event       string `json:"event,omitempty"`
	Code        string `json:"code"`
	Description string `json:"description"`
	HTTPStatus  int    `json:"httpStatus,omitempty"`
}

// Message is the tracking record of one accepted request.
type Message struct {
	ID       string `json:"id"`       // gateway tracking id
	ClientID string `json:"clientId"` // caller that sent it; only it may read the record
	Mailbox  string `json:"mailbox"`  // sending MESH mailbox
	State    State  `json:"state"`

	// MESH metadata. To and Subject carry patient data (GP lookup address,
	// subject template): stored for sending, never logged or sent in webhooks.
	To          string `json:"to"`
	WorkflowID  string `json:"workflowId"`
	Subject     string `json:"subject,omitempty"`
	LocalID     string `json:"localId,omitempty"`
	FileName    string `json:"fileName,omitempty"`
	ContentType string `json:"contentType"` // mex-Content-Type of the payload
	PayloadSize int64  `json:"payloadSize"`

	MeshMessageID string `json:"meshMessageId,omitempty"`

	// ITK3 identifiers, used to correlate acknowledgements.
	BundleID        string `json:"bundleId,omitempty"` // Bundle.identifier.value (20007 duplicate detection)
	MessageHeaderID string `json:"messageHeaderId,omitempty"`
	SenderReference string `json:"senderReference,omitempty"`

	IdempotencyKey string `json:"-"`
	RequestHash    string `json:"-"` // sha256 of the request body, for Idempotency-Key conflicts

	Attempts           int  `json:"attempts"`
	FirstChunkAttempts int  `json:"firstChunkAttempts"` // recorded before each POST /outbox
	AckOverdue         bool `json:"ackOverdue"`

	// Send progress, so a resumed send (after a crash or a failed chunk)
	// splits the payload exactly as the first attempt did.
	ChunkSize  int64 `json:"chunkSize,omitempty"`  // uncompressed bytes per MESH chunk used for this message
	ChunksSent int   `json:"chunksSent,omitempty"` // chunks MESH has accepted so far
	// Gzipped is whether the chunks go gzipped (chunk 1's Content-Encoding,
	// which MESH requires every later chunk to repeat), recorded with
	// ChunkSize before chunk 1 is sent. nil on records from before it was
	// kept: the client's current settings decide, as they always did.
	Gzipped *bool `json:"gzipped,omitempty"`
	// FirstChunkUnconfirmed is set before chunk 1 is POSTed and cleared once
	// its outcome is known; still set with no MeshMessageID means MESH may
	// hold a copy (crash or lost answer), so the next send is a reconcile.
	FirstChunkUnconfirmed bool `json:"firstChunkUnconfirmed,omitempty"`
	TrackPolls            int  `json:"trackPolls,omitempty"` // MESH tracking polls made after sending

	// stored is the record exactly as read from or written to Redis: the
	// expected value of the next compare-and-set (TransitionFrom).
	stored []byte

	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	SentAt      *time.Time `json:"sentAt,omitempty"`
	DeliveredAt *time.Time `json:"deliveredAt,omitempty"`

	InfAck    *Ack       `json:"infAck,omitempty"`
	BusAck    *Ack       `json:"busAck,omitempty"`
	LastError *MeshError `json:"lastError,omitempty"`
	Events    []Event    `json:"events"`
}
