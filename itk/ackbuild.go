package itk

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
)

// UnreadableInOriginal is the fixed identifier ITK3 prescribes when the
// original message's identifiers cannot be read (code 10009).
const UnreadableInOriginal = "UNREADABLE-IN-ORIGINAL-MESSAGE"

// AckRequest describes an ITK3 response (event ITK008M) to build.
type AckRequest struct {
	Code string // ITK3 response code, e.g. 20013, 30001, 20009
	// Diagnostics: context and description of the outcome (GPCM-SD-074).
	// It MUST NOT contain patient-identifiable data (ITK3 FHIR-BA-02).
	// Defaults to the code's display for negative codes.
	Diagnostics string

	RespondsTo       string // original MessageHeader id; empty = UNREADABLE-IN-ORIGINAL-MESSAGE
	SenderReference  string // echoed from the original handling extension; empty = UNREADABLE-IN-ORIGINAL-MESSAGE
	SourceEndpoint   string // responder's MESH mailbox (MessageHeader.source.endpoint)
	ResponderODSCode string // responder organisation (MessageHeader.sender)
	ResponderName    string // optional organisation name

	Now func() time.Time // default time.Now
	IDs *AckIDs          // fixed ids for deterministic output; empty fields are random
}

// AckIDs fixes the generated identifiers of a response message.
type AckIDs struct {
	Bundle, BundleIdentifier, MessageHeader, Organization, OperationOutcome string
}

// BuildAck encodes an ITK3 response message in format f to w and returns it
// in typed form (with Format set). The OperationOutcome issue severity, issue
// type and MessageHeader.response.code follow the ITK3 mapping table
// (itk3-send-document.md §3.2).
func BuildAck(req AckRequest, f Format, w io.Writer) (*Acknowledgement, error) {
	ack, root, err := buildAckTree(req, f)
	if err != nil {
		return nil, err
	}
	if _, err := encodeWire(w, root, f, false); err != nil {
		return nil, fmt.Errorf("itk: encode ack %s: %w", wireFormatName(f), err)
	}
	return ack, nil
}

// AckIssue is the OperationOutcome issue an ITK3 response code maps to:
// severity information/fatal, the code's IssueType, and the ITK3 coding.
func AckIssue(code, diagnostics string) (Issue, string, error) {
	rc, ok := LookupResponseCode(code)
	if !ok {
		return Issue{}, "", fmt.Errorf("itk: unknown ITK3 response code %q", code)
	}
	severity, responseCode := "fatal", "fatal-error"
	if rc.Positive {
		severity, responseCode = "information", "ok"
	}
	if diagnostics == "" && !rc.Positive {
		diagnostics = rc.Display
	}
	return Issue{
		Severity:    severity,
		Code:        rc.IssueType,
		Details:     &CodeableConcept{Coding: []Coding{{System: SystemResponseCodes, Code: rc.Code, Display: rc.Display}}},
		Diagnostics: diagnostics,
	}, responseCode, nil
}

func buildAckTree(req AckRequest, f Format) (*Acknowledgement, *wireElem, error) {
	switch f {
	case FormatXML, FormatJSON, "":
	default:
		return nil, nil, fmt.Errorf("itk: unknown format %q", f)
	}
	issue, responseCode, err := AckIssue(req.Code, req.Diagnostics)
	if err != nil {
		return nil, nil, err
	}
	var missing []string
	if strings.TrimSpace(req.SourceEndpoint) == "" {
		missing = append(missing, "SourceEndpoint")
	}
	if strings.TrimSpace(req.ResponderODSCode) == "" {
		missing = append(missing, "ResponderODSCode")
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("itk: ack request: %s required", strings.Join(missing, ", "))
	}
	if req.RespondsTo != "" && !ackIsFHIRID(req.RespondsTo) {
		return nil, nil, errors.New("itk: ack request: RespondsTo must be a FHIR id (the original MessageHeader.id)")
	}
	if len(req.SenderReference) > buildMaxSenderRef {
		return nil, nil, fmt.Errorf("itk: ack request: SenderReference longer than %d characters", buildMaxSenderRef)
	}
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	ts := now()
	ids, err := resolveAckIDs(req.IDs)
	if err != nil {
		return nil, nil, err
	}
	respondsTo := ackOrDefault(req.RespondsTo, UnreadableInOriginal)
	senderRef := ackOrDefault(req.SenderReference, UnreadableInOriginal)
	rc, _ := LookupResponseCode(req.Code)

	header := wResourceWith("MessageHeader", ids.MessageHeader, buildProfileMessageHeader,
		buildHandlingExtension(false, buildRecipientFI, ResponseDefinitionURL, senderRef),
		wCoding("event", SystemMessageEvent, EventResponse, buildDisplayResponse),
		wReference("sender", buildURN(ids.Organization)),
		wPrim("timestamp", buildInstant(ts)),
		wComplex("source", wPrim("endpoint", strings.TrimSpace(req.SourceEndpoint))),
		wComplex("response",
			wPrim("identifier", respondsTo),
			wPrim("code", responseCode),
			wReference("details", buildURN(ids.OperationOutcome)),
		),
		wReferenceList("focus", buildURN(ids.OperationOutcome)),
	)
	org := wResourceWith("Organization", ids.Organization, buildProfileHeaderOrg,
		wIdentifier(SystemODSCode, req.ResponderODSCode),
		wPrim("name", req.ResponderName),
	)
	outcome := wResourceWith("OperationOutcome", ids.OperationOutcome, buildProfileOutcome,
		wList("issue",
			wPrim("severity", issue.Severity),
			wPrim("code", issue.Code),
			wComplex("details", wCodingList(SystemResponseCodes, rc.Code, rc.Display)),
			wPrim("diagnostics", issue.Diagnostics),
		),
	)
	root := wResource("", "Bundle",
		wPrim("id", ids.Bundle),
		wMeta(buildProfileMessageBundle),
		wSingleIdentifier(buildSystemUUID, ids.BundleIdentifier),
		wPrim("type", "message"),
		wEntry(ids.MessageHeader, header),
		wEntry(ids.Organization, org),
		wEntry(ids.OperationOutcome, outcome),
	)

	kind := AckInfrastructure
	if IsBusinessCode(rc.Code) {
		kind = AckBusiness
	}
	var diagnostics []string
	if issue.Diagnostics != "" {
		diagnostics = []string{issue.Diagnostics}
	}
	format := f
	if format == "" {
		format = FormatXML
	}
	ack := &Acknowledgement{
		Kind:            kind,
		Code:            rc.Code,
		Display:         rc.Display,
		Positive:        rc.Positive,
		ResponseCode:    responseCode,
		Diagnostics:     diagnostics,
		RespondsTo:      respondsTo,
		SenderReference: senderRef,
		BundleID:        ids.Bundle,
		MessageHeaderID: ids.MessageHeader,
		SourceEndpoint:  strings.TrimSpace(req.SourceEndpoint),
		SenderODSCode:   req.ResponderODSCode,
		Timestamp:       ts.Truncate(time.Second),
		Format:          format,
	}
	return ack, root, nil
}

func ackOrDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func resolveAckIDs(fixed *AckIDs) (AckIDs, error) {
	var ids AckIDs
	if fixed != nil {
		ids = *fixed
	}
	for _, p := range []*string{&ids.Bundle, &ids.BundleIdentifier, &ids.MessageHeader, &ids.Organization, &ids.OperationOutcome} {
		if *p == "" {
			*p = uuid.NewString()
			continue
		}
		canonical, ok := buildCanonicalUUID(*p)
		if !ok {
			return AckIDs{}, fmt.Errorf("itk: AckRequest.IDs: %q is not a UUID", *p)
		}
		*p = canonical
	}
	return ids, nil
}

// AckMetadata is the MESH metadata of a response: workflow
// GPCONNECT_SEND_DOCUMENT_ACK, or GPFED_CONSULT_REPORT_ACK when the original
// used the v1 workflow; To is the original sender's mailbox (acks are not
// routed by GP lookup). Nothing here carries patient data.
func AckMetadata(ack *Acknowledgement, originalWorkflow string, to string) MeshMetadata {
	workflow := WorkflowSendDocumentAck
	if strings.EqualFold(strings.TrimSpace(originalWorkflow), WorkflowV1ConsultReport) {
		workflow = WorkflowV1ConsultReportAck
	}
	format := ack.Format
	if format == "" {
		format = FormatXML
	}
	return MeshMetadata{
		WorkflowID:  workflow,
		To:          strings.TrimSpace(to),
		Subject:     "ITK3 Response " + ack.Code + " " + strings.ReplaceAll(ack.Display, "–", "-"),
		LocalID:     ack.SenderODSCode,
		FileName:    ack.BundleID + "." + string(format),
		ContentType: format.ContentType(),
	}
}

// ackIsFHIRID checks the STU3 id type: [A-Za-z0-9\-\.]{1,64}.
func ackIsFHIRID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
