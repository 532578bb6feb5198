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
	RecipientType string `json:"recipientType,omitempty"`
	// Recipient: empty = GP lookup by demographics (GPPROVIDER address).
	Recipient *Recipient `json:"recipient,omitempty"`
	// Replaces an earlier document (Composition.relatesTo replaces).
	Replaces *Replacement `json:"replaces,omitempty"`
	// SenderReference identifies the activity at the sender; default urn:uuid:<Composition id>.
	SenderReference string `json:"senderReference,omitempty"`
	// Format of the MESH payload: "xml" (default, as every published example) or "json".
	Format Format `json:"format,omitempty"`
	// Version of the document: 1, then +1 per replacement (subject template).
	Version int `json:"version,omitempty"`
}

// Patient is the subject of the document.
type Patient struct {
	NHSNumber string    `json:"nhsNumber"`
	BirthDate string    `json:"birthDate"`        // YYYY-MM-DD
	Name      HumanName `json:"name"`             // official name
	Gender    string    `json:"gender,omitempty"` // male | female | other | unknown
	Address   *Address  `json:"address,omitempty"`
}

// HumanName is an official name.
type HumanName struct {
	Family string   `json:"family"`
	Given  []string `json:"given,omitempty"`
	Prefix []string `json:"prefix,omitempty"`
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
	ODSCode string `json:"odsCode"`
	Name    string `json:"name"`
	Mailbox string `json:"mailbox"` // MESH mailbox id (MessageHeader.source.endpoint, mex-From)
	Phone   string `json:"phone,omitempty"`
}

// Author is who wrote the document: a practitioner or a device.
type Author struct {
	Practitioner *Practitioner `json:"practitioner,omitempty"`
	Device       *Device       `json:"device,omitempty"`
}

// Practitioner is a healthcare professional identified by SDS user id.
type Practitioner struct {
	SDSUserID string    `json:"sdsUserId"`
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
	Code    string `json:"code"`
	Display string `json:"display"`
}

// Document is one attachment; the first is the primary attachment.
type Document struct {
	Title       string `json:"title"`
	Type        Code   `json:"type"`        // SNOMED, record composition type refset 1127551000000109 (first document)
	ContentType string `json:"contentType"` // e.g. application/pdf
	FileName    string `json:"fileName,omitempty"`
	Data        []byte `json:"data,omitempty"` // base64 in JSON

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
