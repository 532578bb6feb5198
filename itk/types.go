// Package itk builds, validates and reads ITK3 FHIR STU3 messages for
// GP Connect Send Document v2.0.2 (and accepts v1.x messages where receivers must).
// It is pure Go: no HTTP, no Redis.
package itk

import (
	"strings"
	"time"
)

// Well-known systems, URLs and codes (itk3-send-document.md §1–§3).
const (
	WorkflowSendDocument       = "GPCONNECT_SEND_DOCUMENT"
	WorkflowSendDocumentAck    = "GPCONNECT_SEND_DOCUMENT_ACK"
	WorkflowV1ConsultReport    = "GPFED_CONSULT_REPORT"
	WorkflowV1ConsultReportAck = "GPFED_CONSULT_REPORT_ACK"

	SystemMessageEvent    = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2"
	EventSendDocument     = "ITK007C"
	EventResponse         = "ITK008M"
	SystemRecipientType   = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1"
	SystemResponseCodes   = "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1"
	SystemNHSNumber       = "https://fhir.nhs.uk/Id/nhs-number"
	SystemODSCode         = "https://fhir.nhs.uk/Id/ods-organization-code"
	SystemSDSUserID       = "https://fhir.nhs.uk/Id/sds-user-id"
	SystemSNOMED          = "http://snomed.info/sct"
	ExtMessageHandling    = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-ITK-MessageHandling-2"
	MessageDefinitionURL  = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-GPConnectSendDocument-MessageDefinition-1"
	ResponseDefinitionURL = "https://fhir.nhs.uk/STU3/MessageDefinition/ITK-Response-MessageDefinition-1"

	ContentTypeFHIRXML  = "application/fhir+xml"
	ContentTypeFHIRJSON = "application/fhir+json"
)

// Format is a FHIR wire format.
type Format string

const (
	FormatXML  Format = "xml"
	FormatJSON Format = "json"
)

// ContentType is the MIME type announced for a format (mex-Content-Type).
func (f Format) ContentType() string {
	if f == FormatJSON {
		return ContentTypeFHIRJSON
	}
	return ContentTypeFHIRXML
}

// MeshMetadata is what a sender puts on the MESH message (mex-* headers).
type MeshMetadata struct {
	WorkflowID  string `json:"workflowId"`
	To          string `json:"to"`          // GPPROVIDER_<nhs>_<YYYYMMDD>_<SURNAME> or a mailbox id
	Subject     string `json:"subject"`     // v2 template; carries patient data: MESH header only, never logged
	LocalID     string `json:"localId"`     // sending organisation ODS code (no PID)
	FileName    string `json:"fileName"`    // no PID
	ContentType string `json:"contentType"` // mex-Content-Type: application/fhir+xml or +json
}

// GPProviderAddress is the MESH GP lookup address (YYYYMMDD date of birth,
// upper-case surname; itk3-send-document.md §2.2).
func GPProviderAddress(nhsNumber string, birthDate time.Time, surname string) string {
	return "GPPROVIDER_" + nhsNumber + "_" + birthDate.Format("20060102") + "_" + strings.ToUpper(strings.TrimSpace(surname))
}

// ValidNHSNumber applies the Modulus 11 check to a 10-digit NHS number.
func ValidNHSNumber(s string) bool {
	if len(s) != 10 {
		return false
	}
	sum := 0
	for i := 0; i < 10; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		if i < 9 {
			sum += int(c-'0') * (10 - i)
		}
	}
	check := 11 - sum%11
	if check == 11 {
		check = 0
	}
	if check == 10 {
		return false
	}
	return check == int(s[9]-'0')
}

// OperationOutcome is a FHIR STU3 OperationOutcome (JSON shape; XML via the encoders).
type OperationOutcome struct {
	ResourceType string  `json:"resourceType"` // always "OperationOutcome"
	ID           string  `json:"id,omitempty"`
	Meta         *Meta   `json:"meta,omitempty"`
	Issue        []Issue `json:"issue"`
}

// Meta is FHIR meta with profiles only.
type Meta struct {
	Profile []string `json:"profile,omitempty"`
}

// Issue is one OperationOutcome.issue.
type Issue struct {
	Severity    string           `json:"severity"` // fatal | error | warning | information
	Code        string           `json:"code"`     // IssueType, e.g. invalid, structure, required, value, business-rule
	Details     *CodeableConcept `json:"details,omitempty"`
	Diagnostics string           `json:"diagnostics,omitempty"`
	Expression  []string         `json:"expression,omitempty"` // FHIRPath-ish element path, e.g. Bundle.entry[0].resource.event.code
	Location    []string         `json:"location,omitempty"`
}

// CodeableConcept is the FHIR STU3 type.
type CodeableConcept struct {
	Coding []Coding `json:"coding,omitempty"`
	Text   string   `json:"text,omitempty"`
}

// Coding is the FHIR STU3 type.
type Coding struct {
	System  string `json:"system,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

// NewOperationOutcome returns an outcome with the given issues.
func NewOperationOutcome(issues ...Issue) *OperationOutcome {
	return &OperationOutcome{ResourceType: "OperationOutcome", Issue: issues}
}

// ResponseCode is one ITK3 response code (itk3-send-document.md §3.2).
type ResponseCode struct {
	Code      string // e.g. "20013"
	Display   string
	Positive  bool
	IssueType string // IssueType used in the response OperationOutcome
}

// ResponseCodes lists every ITK3 response code by code.
var responseCodes = map[string]ResponseCode{
	"10001": {"10001", "Handling Specification Error", false, "processing"},
	"10002": {"10002", "Infrastructure Level Response Value - Processing Error", false, "processing"},
	"10003": {"10003", "Business Level Response Value - Processing Error", false, "processing"},
	"10004": {"10004", "Message Definition Value – Processing Error", false, "processing"},
	"10005": {"10005", "Message Definition Version Value – Processing Error", false, "processing"},
	"10007": {"10007", "Sender Reference Value - Processing Error", false, "processing"},
	"10008": {"10008", "Handling Specification Business Rule Error", false, "processing"},
	"10009": {"10009", "Unreadable message received", false, "processing"},
	"10010": {"10010", "Recipient Type - Processing Error", false, "processing"},
	"20001": {"20001", "Unrecognised Recipient Person", false, "not-found"},
	"20002": {"20002", "Unrecognised Recipient Organisation", false, "not-found"},
	"20003": {"20003", "Unrecognised Sender", false, "not-found"},
	"20004": {"20004", "Non-Approved file type received as an attachment", false, "security"},
	"20005": {"20005", "Unsupported file type received as an attachment", false, "security"},
	"20006": {"20006", "ITK3 Header validation failure", false, "invalid"},
	"20007": {"20007", "Duplicate Message received", false, "duplicate"},
	"20008": {"20008", "Duplicate Document received", false, "duplicate"},
	"20009": {"20009", "Payload validation failure", false, "invalid"},
	"20010": {"20010", "Unrecognised Payload Recipient Organisation", false, "not-found"},
	"20011": {"20011", "Unrecognised Payload Recipient Person", false, "not-found"},
	"20012": {"20012", "Unauthorised Sender", false, "security"},
	"20013": {"20013", "Success", true, "informational"},
	"20014": {"20014", "Unable to Process Replacement Document", false, "processing"},
	"20015": {"20015", "Message too large", false, "processing"},
	"30001": {"30001", "Patient known here", true, "informational"},
	"30002": {"30002", "Patient not known here", false, "not-found"},
	"30003": {"30003", "Patient no longer at this clinical setting", false, "business-rule"},
	"30004": {"30004", "Patient known here and recently deceased", true, "informational"},
}

// LookupResponseCode returns the ITK3 response code definition.
func LookupResponseCode(code string) (ResponseCode, bool) {
	rc, ok := responseCodes[code]
	return rc, ok
}

// IsInfrastructureCode reports whether a code answers InfAckRequested (prefix 1 or 2).
func IsInfrastructureCode(code string) bool {
	return len(code) == 5 && (code[0] == '1' || code[0] == '2')
}

// IsBusinessCode reports whether a code answers BusAckRequested (prefix 3).
func IsBusinessCode(code string) bool { return len(code) == 5 && code[0] == '3' }
