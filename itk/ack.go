package itk

import "time"

// AckKind says which ITK3 acknowledgement level a response is.
type AckKind string

const (
	AckInfrastructure AckKind = "infrastructure" // codes 1xxxx/2xxxx (InfAckRequested)
	AckBusiness       AckKind = "business"       // codes 3xxxx (BusAckRequested)
)

// Acknowledgement is an ITK3 response (event ITK008M) in typed form. It is
// both what ParseAck returns and what BuildAck encodes.
type Acknowledgement struct {
	Kind     AckKind `json:"kind"`
	Code     string  `json:"code"` // ITK3 response code, e.g. 20013, 30001, 20009
	Display  string  `json:"display"`
	Positive bool    `json:"positive"`
	// ResponseCode is MessageHeader.response.code: ok | fatal-error (| transient-error).
	ResponseCode string `json:"responseCode"`
	// Diagnostics from OperationOutcome.issue.diagnostics (never patient data, ITK3 FHIR-BA-02).
	Diagnostics []string `json:"diagnostics,omitempty"`

	// What it answers: MessageHeader.response.identifier (the original
	// MessageHeader id, or UNREADABLE-IN-ORIGINAL-MESSAGE) and the echoed SenderReference.
	RespondsTo      string `json:"respondsTo"`
	SenderReference string `json:"senderReference,omitempty"`

	// The response message itself.
	BundleID        string    `json:"bundleId,omitempty"`
	MessageHeaderID string    `json:"messageHeaderId,omitempty"`
	SourceEndpoint  string    `json:"sourceEndpoint,omitempty"` // responder's MESH mailbox
	SenderODSCode   string    `json:"senderOdsCode,omitempty"`
	Timestamp       time.Time `json:"timestamp"`
	// Format the response was encoded in (mex-Content-Type of its MESH message).
	Format Format `json:"format,omitempty"`
}

// MeshReport is a MESH error REPORT (mex-MessageType REPORT) in the same event model.
type MeshReport struct {
	MessageID       string    `json:"messageId"`       // the report's own id
	LinkedMessageID string    `json:"linkedMessageId"` // the undelivered message
	StatusCode      string    `json:"statusCode"`      // e.g. EPL-151, 14
	StatusEvent     string    `json:"statusEvent"`     // SEND | TRANSFER ...
	StatusSuccess   string    `json:"statusSuccess"`   // ERROR
	Description     string    `json:"description"`
	WorkflowID      string    `json:"workflowId,omitempty"`
	LocalID         string    `json:"localId,omitempty"`
	Timestamp       time.Time `json:"timestamp"`
}
