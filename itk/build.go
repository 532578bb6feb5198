package itk

import (
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Message is a built GP Connect Send Document ITK3 message, ready to encode.
// It holds the request's documents by reference: bytes are read only while
// encoding, and a document given as a Reader can be encoded once (so such a
// message must not be encoded concurrently). Metadata.To and Subject carry
// patient data: MESH headers only, never logs. Metadata.FileName and
// ContentType describe m.Format; EncodeFormat in another format is the
// caller's choice to label.
type Message struct {
	BundleID         string // message Bundle.id
	BundleIdentifier string // message Bundle.identifier.value: key of ITK3 duplicate detection (20007); keep it to resend identically
	MessageHeaderID  string // the id an ITK3 response quotes in MessageHeader.response.identifier
	SenderReference  string // echoed by every ITK3 response
	CompositionID    string // the document identifier (20008 duplicates, relatesTo of a later replacement)
	DocumentBundleID string

	Metadata MeshMetadata
	Format   Format

	root *wireElem
}

// Encode writes the message in m.Format.
func (m *Message) Encode(w io.Writer) error { return m.EncodeFormat(w, m.Format) }

// EncodeFormat writes the message as FHIR XML or JSON. Document bytes are
// base64-streamed from Data or Reader straight into w.
func (m *Message) EncodeFormat(w io.Writer, f Format) error {
	if _, err := encodeWire(w, m.root, f, false); err != nil {
		return fmt.Errorf("itk: encode %s: %w", wireFormatName(f), err)
	}
	return nil
}

// EncodedSize is the exact byte length EncodeFormat would write, computed
// without reading any document; ok is false when a streamed document's size
// is unknown (or it was already consumed).
func (m *Message) EncodedSize(f Format) (int64, bool) {
	n, err := encodeWire(io.Discard, m.root, f, true)
	if err != nil {
		return 0, false
	}
	return n, true
}

func wireFormatName(f Format) string {
	if f == "" {
		return string(FormatXML)
	}
	return string(f)
}

// FieldProblem is one invalid field of a SendRequest. Field is the JSON path
// (e.g. "documents[1].contentType"); Message never contains patient values.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// RequestError lists every problem found in a SendRequest.
type RequestError struct {
	Problems []FieldProblem `json:"problems"`
}

func (e *RequestError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Field + ": " + p.Message
	}
	return "itk: invalid send request: " + strings.Join(parts, "; ")
}

func (e *RequestError) add(field, format string, args ...any) {
	e.Problems = append(e.Problems, FieldProblem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Attachment MIME types: the "common health related MIME types" of the v2
// Attachment-types page, with its two typos corrected (rtf, tiff) and
// image/jpeg added beside the page's non-standard image/jpg.
var attachmentContentTypes = map[string]bool{
	"application/pdf":    true,
	"application/msword": true,
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": true,
	"application/rtf": true,
	"text/html":       true,
	"text/plain":      true,
	"text/xml":        true,
	"image/jpeg":      true,
	"image/jpg":       true,
	"image/png":       true,
	"image/tiff":      true,
}

// AttachmentContentType reports whether a document MIME type may be sent, and
// returns it normalised (lower-case type, parameters kept).
func AttachmentContentType(contentType string) (string, bool) {
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || !attachmentContentTypes[mediaType] {
		return "", false
	}
	if len(params) == 0 {
		return mediaType, true
	}
	return mime.FormatMediaType(mediaType, params), true
}

const (
	buildMaxSenderRef   = 255
	meshMaxSubjectBytes = 500 // mex-Subject limit
	buildRecipientFA    = "FA"
	buildRecipientFI    = "FI"
)

var buildRecipientDisplay = map[string]string{buildRecipientFA: "For Action", buildRecipientFI: "For Information"}

var patientGenders = map[string]bool{"male": true, "female": true, "other": true, "unknown": true}

// checkSendRequest validates req and returns the parsed birth date. All problems
// are collected so a caller can fix a request in one round.
func checkSendRequest(req *SendRequest, now time.Time) (time.Time, *RequestError) {
	var problems RequestError
	p := &req.Patient
	switch {
	case p.NHSNumber == "":
		problems.add("patient.nhsNumber", "is required")
	case !digitsOnly(p.NHSNumber) || len(p.NHSNumber) != 10:
		problems.add("patient.nhsNumber", "must be 10 digits")
	case !ValidNHSNumber(p.NHSNumber):
		problems.add("patient.nhsNumber", "fails the Modulus 11 check")
	}
	var birthDate time.Time
	if p.BirthDate == "" {
		problems.add("patient.birthDate", "is required")
	} else if d, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
		problems.add("patient.birthDate", "must be a date YYYY-MM-DD")
	} else if d.After(now) {
		problems.add("patient.birthDate", "must not be in the future")
	} else {
		birthDate = d
	}
	if strings.TrimSpace(p.Name.Family) == "" {
		problems.add("patient.name.family", "is required")
	} else if strings.Contains(p.Name.Family, "_") {
		problems.add("patient.name.family", "must not contain '_' (the GP lookup address delimiter)")
	}
	if p.Gender != "" && !patientGenders[p.Gender] {
		problems.add("patient.gender", "must be one of male, female, other, unknown")
	}

	requireODS(&problems, "sender.odsCode", req.Sender.ODSCode)
	if strings.TrimSpace(req.Sender.Mailbox) == "" {
		problems.add("sender.mailbox", "is required")
	}

	switch a := req.Author; {
	case a.Practitioner == nil && a.Device == nil:
		problems.add("author", "a practitioner or a device is required")
	case a.Practitioner != nil && a.Device != nil:
		problems.add("author", "give either a practitioner or a device, not both")
	case a.Practitioner != nil:
		if strings.TrimSpace(a.Practitioner.Name.Family) == "" {
			problems.add("author.practitioner.name.family", "is required")
		}
		if id := a.Practitioner.SDSUserID; id != "" && id != buildUnknownSDSUserID && !digitsOnly(id) {
			problems.add("author.practitioner.sdsUserId", "must be digits (or UNK)")
		}
	default:
		if strings.TrimSpace(a.Device.Name) == "" {
			problems.add("author.device.name", "is required")
		}
	}

	if cs := req.CareSetting; cs != nil {
		if cs.Type != nil {
			requireSNOMED(&problems, "careSetting.type", *cs.Type)
		}
		if cs.Date != "" && !isFHIRDateTime(cs.Date) {
			problems.add("careSetting.date", "must be a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or RFC 3339 with time zone)")
		}
		if cs.Organization != nil {
			requireODS(&problems, "careSetting.organization.odsCode", cs.Organization.ODSCode)
		}
	}
	// The care organisation becomes a CareConnect-Organization-1, whose
	// name is mandatory; it also names the place in the MESH subject.
	if cs := req.CareSetting; cs != nil && cs.Organization != nil {
		if strings.TrimSpace(cs.Organization.Name) == "" {
			problems.add("careSetting.organization.name", "is required (the organisation where the patient was seen)")
		}
	} else if strings.TrimSpace(req.Sender.Name) == "" {
		problems.add("sender.name", "is required (the sending organisation's name, mandatory in CareConnect-Organization-1)")
	}

	if len(req.Documents) == 0 {
		problems.add("documents", "at least one document is required")
	}
	for i := range req.Documents {
		d := &req.Documents[i]
		field := "documents[" + strconv.Itoa(i) + "]"
		if strings.TrimSpace(d.Title) == "" {
			problems.add(field+".title", "is required")
		}
		requireSNOMED(&problems, field+".type", d.Type)
		if d.ContentType == "" {
			problems.add(field+".contentType", "is required")
		} else if _, ok := AttachmentContentType(d.ContentType); !ok {
			problems.add(field+".contentType", "is not an accepted attachment type (pdf, doc, docx, rtf, html, plain text, xml, jpeg, png, tiff)")
		}
		switch {
		case d.Reader == nil && len(d.Data) == 0:
			problems.add(field+".data", "content is empty")
		case d.Reader != nil && d.Size == 0:
			problems.add(field+".data", "content is empty")
		}
	}

	switch req.RecipientType {
	case "", buildRecipientFA, buildRecipientFI:
	default:
		problems.add("recipientType", "must be FA or FI")
	}
	if r := req.Recipient; r != nil && strings.TrimSpace(r.Mailbox) == "" {
		if r.ODSCode != "" {
			problems.add("recipient.mailbox", "is required: resolve recipient.odsCode with MESH endpoint lookup before building")
		} else {
			problems.add("recipient", "give a mailbox, or omit recipient for GP lookup")
		}
	}
	if req.Replaces != nil {
		if _, ok := buildCanonicalUUID(req.Replaces.DocumentID); !ok {
			problems.add("replaces.documentId", "must be the UUID of the original document")
		}
	}
	if n := len(req.SenderReference); n > buildMaxSenderRef {
		problems.add("senderReference", "must be at most %d characters", buildMaxSenderRef)
	}
	switch req.Format {
	case "", FormatXML, FormatJSON:
	default:
		problems.add("format", "must be xml or json")
	}
	if req.Version < 0 {
		problems.add("version", "must be 1 or more")
	}
	if len(problems.Problems) > 0 {
		return time.Time{}, &problems
	}
	return birthDate, nil
}

func requireODS(problems *RequestError, field, code string) {
	switch {
	case strings.TrimSpace(code) == "":
		problems.add(field, "is required")
	case len(code) > 10 || !alnumOnly(code):
		problems.add(field, "must be an ODS code (letters and digits)")
	}
}

func requireSNOMED(problems *RequestError, field string, c Code) {
	switch {
	case c.Code == "":
		problems.add(field+".code", "is required")
	case !digitsOnly(c.Code) || len(c.Code) < 6 || len(c.Code) > 18:
		problems.add(field+".code", "must be a SNOMED CT concept id (6-18 digits)")
	}
}

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func alnumOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// isFHIRDateTime accepts the FHIR STU3 dateTime forms.
func isFHIRDateTime(s string) bool {
	for _, layout := range []string{"2006", "2006-01", time.DateOnly, time.RFC3339Nano} {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

// Build validates req and assembles the ITK3 message (GP Connect Send
// Document v2.0.2). It returns a *RequestError listing every invalid field.
// Output is deterministic for the same request, opts.IDs and opts.Now.
func Build(req *SendRequest, opts BuildOptions) (*Message, error) {
	if req == nil {
		return nil, &RequestError{Problems: []FieldProblem{{Field: "", Message: "request is required"}}}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	ts := now()
	birthDate, problems := checkSendRequest(req, ts)
	if problems != nil {
		return nil, problems
	}
	ids, err := resolveBuildIDs(opts.IDs, len(req.Documents))
	if err != nil {
		return nil, err
	}
	format := req.Format
	if format == "" {
		format = FormatXML
	}
	senderRef := req.SenderReference
	if senderRef == "" {
		senderRef = "urn:uuid:" + ids.Composition
	}
	m := &Message{
		BundleID:         ids.Bundle,
		BundleIdentifier: ids.BundleIdentifier,
		MessageHeaderID:  ids.MessageHeader,
		SenderReference:  senderRef,
		CompositionID:    ids.Composition,
		DocumentBundleID: ids.DocumentBundle,
		Format:           format,
	}
	m.root = buildMessageBundle(req, ids, senderRef, ts)
	m.Metadata = buildSendMetadata(req, birthDate, ids.Bundle, format)
	return m, nil
}

// resolveBuildIDs fills every id not fixed by the caller with a random UUID.
// Fixed ids must be UUIDs (they become urn:uuid: fullUrls); they are
// lower-cased to the canonical form.
func resolveBuildIDs(fixed *IDs, documents int) (IDs, error) {
	var ids IDs
	if fixed != nil {
		ids = *fixed
		ids.Binaries = append([]string(nil), fixed.Binaries...)
	}
	for len(ids.Binaries) < documents {
		ids.Binaries = append(ids.Binaries, "")
	}
	named := []struct {
		name string
		p    *string
	}{
		{"Bundle", &ids.Bundle}, {"BundleIdentifier", &ids.BundleIdentifier}, {"MessageHeader", &ids.MessageHeader},
		{"SenderOrganization", &ids.SenderOrganization}, {"DocumentBundle", &ids.DocumentBundle},
		{"Composition", &ids.Composition}, {"Patient", &ids.Patient}, {"Author", &ids.Author},
		{"CareOrganization", &ids.CareOrganization},
	}
	for i := range ids.Binaries {
		named = append(named, struct {
			name string
			p    *string
		}{"Binaries[" + strconv.Itoa(i) + "]", &ids.Binaries[i]})
	}
	seen := make(map[string]string, len(named))
	for _, n := range named {
		if *n.p == "" {
			*n.p = uuid.NewString()
		} else if canonical, ok := buildCanonicalUUID(*n.p); ok {
			*n.p = canonical
		} else {
			return IDs{}, fmt.Errorf("itk: BuildOptions.IDs.%s is not a UUID", n.name)
		}
		// The bundle identifier may repeat an id; fullUrls may not (bdl-7).
		if n.name == "BundleIdentifier" {
			continue
		}
		if other, dup := seen[*n.p]; dup {
			return IDs{}, fmt.Errorf("itk: BuildOptions.IDs.%s repeats IDs.%s", n.name, other)
		}
		seen[*n.p] = n.name
	}
	return ids, nil
}

// buildCanonicalUUID accepts only the 36-character hyphenated form.
func buildCanonicalUUID(s string) (string, bool) {
	if len(s) != 36 {
		return "", false
	}
	u, err := uuid.Parse(s)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// buildDocumentVersion is 1 for an original and 2 for a replacement unless the
// caller says otherwise (later replacements must give their version).
func buildDocumentVersion(req *SendRequest) int {
	switch {
	case req.Version > 0:
		return req.Version
	case req.Replaces != nil:
		return 2
	default:
		return 1
	}
}

// careOrganizationOf is where care happened: the care setting's organisation,
// else the sender.
func careOrganizationOf(req *SendRequest) Organization {
	if cs := req.CareSetting; cs != nil && cs.Organization != nil {
		return *cs.Organization
	}
	return Organization{ODSCode: req.Sender.ODSCode, Name: req.Sender.Name, Phone: req.Sender.Phone}
}

func buildSendMetadata(req *SendRequest, birthDate time.Time, bundleID string, f Format) MeshMetadata {
	to := ""
	if req.Recipient != nil && strings.TrimSpace(req.Recipient.Mailbox) != "" {
		to = strings.TrimSpace(req.Recipient.Mailbox)
	} else {
		to = GPProviderAddress(req.Patient.NHSNumber, birthDate, req.Patient.Name.Family)
	}
	return MeshMetadata{
		WorkflowID:  WorkflowSendDocument,
		To:          to,
		Subject:     SendSubject(req),
		LocalID:     req.Sender.ODSCode,
		FileName:    bundleID + "." + string(f),
		ContentType: f.ContentType(),
	}
}

// SendSubject renders the v2 MESH API subject template
// "[payload-title] for [patient-name], NHS Number: [nhs-number], seen at
// [practice-name], ODS code: [ods-code], version [version]" within the
// 500-byte mex-Subject limit: the title is shortened first so the patient
// identifiers stay whole, and the cut never splits a UTF-8 character.
// The subject carries patient data: MESH header only, never log it.
func SendSubject(req *SendRequest) string {
	title := ""
	if len(req.Documents) > 0 {
		title = req.Documents[0].Title
	}
	org := careOrganizationOf(req)
	practice := org.Name
	if practice == "" {
		practice = org.ODSCode
	}
	rest := " for " + buildPatientName(req.Patient.Name) +
		", NHS Number: " + displayNHSNumber(req.Patient.NHSNumber) +
		", seen at " + practice + ", ODS code: " + org.ODSCode +
		", version " + strconv.Itoa(buildDocumentVersion(req))
	title, rest = meshHeaderSafe(title), meshHeaderSafe(rest)
	if len(title)+len(rest) > meshMaxSubjectBytes {
		const ellipsis = "..."
		room := meshMaxSubjectBytes - len(rest) - len(ellipsis)
		if room > 0 {
			title = truncateAtRune(title, room) + ellipsis
		} else {
			title = ""
		}
	}
	return truncateAtRune(title+rest, meshMaxSubjectBytes)
}

// meshHeaderSafe replaces control characters (rejected in mex-* headers) with spaces.
func meshHeaderSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

func truncateAtRune(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func buildPatientName(n HumanName) string {
	parts := append(append(append([]string{}, n.Prefix...), n.Given...), n.Family)
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, " ")
}

// displayNHSNumber renders the 3-3-4 display form, as in the v2 MESH examples.
func displayNHSNumber(n string) string {
	if len(n) != 10 {
		return n
	}
	return n[:3] + " " + n[3:6] + " " + n[6:]
}
