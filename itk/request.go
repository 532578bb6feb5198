package itk

import (
	"io"
	"time"
)

// SendRequest is the simple JSON request of POST /v1/documents and of
// `gateway itk build`: everything needed to build an ITK3 Send Document message.
// In multipart uploads the "metadata" part has this shape and the "file" part
// supplies Documents[0] (Reader/Size) instead of Data.
type SendRequest struct {
	Patient     Patient      `json:"patient"`
	Sender      Sender       `json:"sender"`
	Author      Author       `json:"author"`
	CareSetting *CareSetting `json:"careSetting,omitempty"`
	Documents   []Document   `json:"documents"`
	// RecipientType is "FA" (For Action) or "FI" (For Information); default FA.
	RecipientType string `json:"recipientType,omitempty" example:"FA" enums:"FA,FI"`
	// Recipient: empty = GP lookup by demographics (GPPROVIDER address).
	Recipient *Recipient `json:"recipient,omitempty"`
	// Replaces an earlier document (Composition.relatesTo replaces).
	Replaces *Replacement `json:"replaces,omitempty"`
	// SenderReference identifies the activity at the sender; default urn:uuid:<Composition id>.
	SenderReference string `json:"senderReference,omitempty"`
	// Format of the MESH payload: "xml" (default, as every published example) or "json".
	Format Format `json:"format,omitempty" example:"xml" enums:"xml,json"`
	// Version of the document: 1, then +1 per replacement (subject template).
	Version int `json:"version,omitempty"`
}

// Patient is the subject of the document.
type Patient struct {
	NHSNumber string    `json:"nhsNumber" example:"9000000009"`
	BirthDate string    `json:"birthDate" example:"1967-01-26"`    // YYYY-MM-DD
	Name      HumanName `json:"name"`                              // official name
	Gender    string    `json:"gender,omitempty" example:"female"` // male | female | other | unknown
	Address   *Address  `json:"address,omitempty"`
}

// HumanName is an official name.
type HumanName struct {
	Family string   `json:"family" example:"Smith"`
	Given  []string `json:"given,omitempty" example:"Jane"`
	Prefix []string `json:"prefix,omitempty" example:"Mrs"`
}

// Address is a postal address.
type Address struct {
	Line       []string `json:"line,omitempty"`
	City       string   `json:"city,omitempty"`
	District   string   `json:"district,omitempty"`
	PostalCode string   `json:"postalCode,omitempty"`
}

// Sender is the sending organisation.
type Sender struct {
	ODSCode string `json:"odsCode" example:"X26"`
	Name    string `json:"name" example:"Demo Urgent Care Centre"`
	Mailbox string `json:"mailbox" example:"X26ABC1"` // MESH mailbox id (MessageHeader.source.endpoint, mex-From)
	Phone   string `json:"phone,omitempty"`
}

// Author is who wrote the document: a practitioner or a device.
type Author struct {
	Practitioner *Practitioner `json:"practitioner,omitempty"`
	Device       *Device       `json:"device,omitempty"`
}

// Practitioner is a healthcare professional identified by SDS user id.
type Practitioner struct {
	SDSUserID string    `json:"sdsUserId" example:"123456789012"`
	Name      HumanName `json:"name"`
	Phone     string    `json:"phone,omitempty"`
}

// Device is a software author (ITK-Device-1).
type Device struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

// CareSetting describes where and when care happened.
type CareSetting struct {
	Type         *Code         `json:"type,omitempty"`         // SNOMED care setting type, e.g. 789718008 Cardiology service
	Date         string        `json:"date,omitempty"`         // FHIR dateTime of the encounter
	Organization *Organization `json:"organization,omitempty"` // where care happened (default: the sender)
}

// Organization is a CareConnect organisation.
type Organization struct {
	ODSCode string `json:"odsCode"`
	Name    string `json:"name"`
	Phone   string `json:"phone,omitempty"`
}

// Code is a SNOMED CT code with its display.
type Code struct {
	Code    string `json:"code" example:"371531000"`
	Display string `json:"display" example:"Report of clinical encounter"`
}

// Document is one attachment; the first is the primary attachment.
type Document struct {
	Title       string `json:"title" example:"Consultation summary"`
	Type        Code   `json:"type"`                                  // SNOMED, record composition type refset 1127551000000109 (first document)
	ContentType string `json:"contentType" example:"application/pdf"` // e.g. application/pdf
	FileName    string `json:"fileName,omitempty" example:"summary.pdf"`
	Data        []byte `json:"data,omitempty" swaggertype:"string" format:"byte" example:"JVBERi0xLjQKJeLjz9MKMSAwIG9iago8PC9UeXBlL0NhdGFsb2cvUGFnZXMgMiAwIFI+PgplbmRvYmoKMiAwIG9iago8PC9UeXBlL1BhZ2VzL0tpZHNbMyAwIFJdL0NvdW50IDE+PgplbmRvYmoKMyAwIG9iago8PC9UeXBlL1BhZ2UvUGFyZW50IDIgMCBSL01lZGlhQm94WzAgMCA1OTUgODQyXT4+CmVuZG9iagp0cmFpbGVyCjw8L1Jvb3QgMSAwIFI+PgolJUVPRgo="` // base64 in JSON

	// Reader streams the content instead of Data (multipart uploads); Size is
	// its length when known (-1 otherwise). Read exactly once by Encode.
	Reader io.Reader `json:"-"`
	Size   int64     `json:"-"`
}

// Recipient overrides GP lookup: an explicit MESH mailbox, or an ODS code the
// caller resolves through MESH endpoint lookup before building.
type Recipient struct {
	Mailbox string `json:"mailbox,omitempty"`
	ODSCode string `json:"odsCode,omitempty"`
}

// Replacement identifies the document this one replaces.
type Replacement struct {
	DocumentID string `json:"documentId"` // UUID of the original document (Composition identifier)
}

// IDs fixes the generated identifiers so output is deterministic in tests.
type IDs struct {
	Bundle, BundleIdentifier, MessageHeader, SenderOrganization    string
	DocumentBundle, Composition, Patient, Author, CareOrganization string
	Binaries                                                       []string
}

// BuildOptions controls Build. Zero values: random UUIDs, time.Now.
type BuildOptions struct {
	IDs *IDs
	Now func() time.Time
}
