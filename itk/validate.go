package itk

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/meshgateway/gateway/itk/fhir"
)

// Result is the outcome of Validate: every problem at once, plus what a
// valid message tells us (ids and the MESH metadata to send it with).
type Result struct {
	// Outcome lists every problem. Diagnostics never quote element values
	// (they may be patient data); issue.details carries the ITK3 response
	// code a receiving practice would return for an error.
	Outcome *OperationOutcome `json:"outcome"`
	Valid   bool              `json:"valid"` // no error or fatal issue
	Format  Format            `json:"format"`
	// Version is "2", or "1" when a v1 LocalExtension value
	// (SendDocument-ConsultationReport/Summary) marks a v1-era message.
	Version string `json:"version"`
	// Metadata is derived from a valid message (nil otherwise). It targets
	// the v2 workflow whatever Version says. It carries patient data.
	Metadata *MeshMetadata `json:"metadata,omitempty"`

	BundleIdentifier string `json:"bundleIdentifier,omitempty"`
	BundleID         string `json:"bundleId,omitempty"`
	MessageHeaderID  string `json:"messageHeaderId,omitempty"`
	SenderReference  string `json:"senderReference,omitempty"`
	SourceEndpoint   string `json:"sourceEndpoint,omitempty"`
	SenderODSCode    string `json:"senderOdsCode,omitempty"`
	CompositionID    string `json:"compositionId,omitempty"`

	// InfAckCode is the single ITK3 infrastructure code a receiver would
	// send back: 20013 when valid, else the most significant negative code.
	InfAckCode string `json:"infAckCode"`
}

// Issue severities.
const (
	SeverityFatal       = "fatal"
	SeverityError       = "error"
	SeverityWarning     = "warning"
	SeverityInformation = "information"
)

// Send Document identifiers checked by Validate (itk3-send-document.md §1).
const (
	ExtNHSNumberVerificationV2 = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-NHSNumberVerificationStatus-1"
	ExtNHSNumberVerificationV1 = "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-NHSNumberVerificationStatus-1"
	LocalExtensionV2           = "None"
	maxSenderReference         = 255
)

var localExtensionV1 = map[string]bool{
	"SendDocument-ConsultationReport":  true,
	"SendDocument-ConsultationSummary": true,
}

// nhsCheckDigitSeverity: the Modulus 11 check is not a receiver rule in
// either spec version (MESH applies it at lookup: EPL-152), and both
// published examples carry numbers that fail it, so a failure is information
// that names the 20009 a checking receiver would return.
const nhsCheckDigitSeverity = SeverityInformation

// DetectFormat sniffs the wire format: the first non-space byte '<' is XML,
// '{' is JSON; anything else is "" (unreadable).
func DetectFormat(data []byte) Format {
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	for _, c := range data {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '<':
			return FormatXML
		case '{':
			return FormatJSON
		}
		return ""
	}
	return ""
}

// Validate checks an ITK3 GP Connect Send Document message (v2.0.2 rules;
// v1.x messages are accepted with warnings) strictly against FHIR STU3 and
// the Send Document rules, reporting every problem at once. f "" sniffs.
func Validate(data []byte, f Format) *Result {
	r := &Result{Outcome: NewOperationOutcome(), Format: f, Version: "2"}
	if f == "" {
		f = DetectFormat(data)
		r.Format = f
	}
	v := &validator{r: r, format: f}
	if f != FormatXML && f != FormatJSON {
		v.fatal("the message is neither FHIR XML nor FHIR JSON")
		return v.finish()
	}
	root, issues, err := fhir.Decode(data, fhir.Format(f), fhir.DefaultMaxDepth)
	if err != nil {
		// SyntaxError text is an offset and a reason, never content.
		v.fatal("the message cannot be read: " + err.Error())
		return v.finish()
	}
	v.root = root
	v.checkMessage(issues)
	return v.finish()
}

type validator struct {
	r      *Result
	format Format
	root   *fhir.Node

	outer     map[string]*fhir.Node // message bundle fullUrl → resource
	docPath   string                // path of the document Bundle (payload)
	doc       *fhir.Node
	docIndex  map[string]*fhir.Node // document bundle fullUrl → resource
	noProfile []string
	noID      []string
	senderOrg *fhir.Node
}

func (v *validator) issue(sev, issueType, path, msg, itkCode string) {
	is := Issue{Severity: sev, Code: issueType, Diagnostics: msg}
	if path != "" {
		is.Expression = []string{path}
	}
	if itkCode != "" {
		rc, _ := LookupResponseCode(itkCode)
		is.Details = &CodeableConcept{Coding: []Coding{{System: SystemResponseCodes, Code: itkCode, Display: rc.Display}}}
	}
	v.r.Outcome.Issue = append(v.r.Outcome.Issue, is)
}

// fail records an error that a receiver would answer with itkCode.
func (v *validator) fail(issueType, path, msg, itkCode string) {
	v.issue(SeverityError, issueType, path, msg, itkCode)
}

func (v *validator) warn(path, msg string) { v.issue(SeverityWarning, "business-rule", path, msg, "") }

func (v *validator) info(path, msg string) {
	v.issue(SeverityInformation, "informational", path, msg, "")
}

func (v *validator) fatal(msg string) {
	v.issue(SeverityFatal, "structure", "", msg, "10009")
}

// codePriority orders negative codes by how early a receiver meets them:
// unreadable, then handling keys, header, payload, attachment type.
func codePriority(code string) int {
	switch {
	case code == "10009":
		return 0
	case strings.HasPrefix(code, "1"):
		n, _ := strconv.Atoi(code)
		return n - 10000 + 1
	case code == "20006":
		return 100
	case code == "20009":
		return 101
	default:
		n, _ := strconv.Atoi(code)
		return 200 + n%1000
	}
}

func (v *validator) finish() *Result {
	r := v.r
	// Detach from the input (large tree values alias it).
	for _, p := range []*string{&r.BundleIdentifier, &r.BundleID, &r.MessageHeaderID, &r.SenderReference,
		&r.SourceEndpoint, &r.SenderODSCode, &r.CompositionID} {
		*p = strings.Clone(*p)
	}
	r.Valid = true
	best := ""
	for _, is := range r.Outcome.Issue {
		if is.Severity != SeverityError && is.Severity != SeverityFatal {
			continue
		}
		r.Valid = false
		if is.Details != nil && len(is.Details.Coding) > 0 {
			c := is.Details.Coding[0].Code
			if best == "" || codePriority(c) < codePriority(best) {
				best = c
			}
		}
	}
	switch {
	case r.Valid:
		r.InfAckCode = "20013"
	case best != "":
		r.InfAckCode = best
	default:
		r.InfAckCode = "20009"
	}
	if r.Valid && v.root != nil {
		r.Metadata = v.metadata()
	}
	return r
}

// checkMessage runs the ITK3 header and Send Document payload rules.
func (v *validator) checkMessage(structural []fhir.Issue) {
	root := v.root
	if root.Name != "Bundle" {
		v.reportStructural(structural)
		v.fail("invalid", root.Path, "the message must be a FHIR Bundle of type message, not a "+safeResourceName(root.Name), "20006")
		return
	}
	v.r.BundleID = root.Str("id")
	v.r.BundleIdentifier = root.Str("identifier.value")
	entries := root.All("entry")
	v.outer = indexEntries(entries)
	v.locatePayload(entries)
	v.reportStructural(structural)

	if t := root.Str("type"); t != "message" {
		v.fail("invalid", "Bundle.type", "Bundle.type must be message for an ITK3 message", "20006")
	}
	if v.r.BundleIdentifier == "" {
		v.fail("required", "Bundle.identifier", "the message bundle needs an identifier (the ITK3 message identifier used for duplicate detection)", "20006")
	}
	v.checkFullURLs(entries, "20006")
	if len(entries) == 0 {
		v.fail("required", "Bundle.entry", "the message bundle has no entries; the first must be the MessageHeader", "20006")
		return
	}
	mh := entries[0].Child("resource").Resource()
	if mh == nil || mh.Name != "MessageHeader" {
		v.fail("invalid", "Bundle.entry[0].resource", "the first entry of an ITK3 message must be the MessageHeader", "20006")
		return
	}
	v.checkHeader(mh)
	if v.doc != nil {
		v.checkDocument()
	}
	for _, e := range entries[1:] {
		if res := e.Child("resource").Resource(); res != nil {
			v.noteMeta(res)
		}
	}
	v.noteMeta(root)
	v.noteMeta(mh)
	if len(v.noProfile) > 0 {
		sort.Strings(v.noProfile)
		is := Issue{Severity: SeverityInformation, Code: "informational", Expression: v.noProfile,
			Diagnostics: strconv.Itoa(len(v.noProfile)) + " resource(s) declare no meta.profile (GPCM-SD-027 treats meta as mandatory; the v2 example omits it)"}
		v.r.Outcome.Issue = append(v.r.Outcome.Issue, is)
	}
	if len(v.noID) > 0 {
		sort.Strings(v.noID)
		is := Issue{Severity: SeverityInformation, Code: "informational", Expression: v.noID,
			Diagnostics: strconv.Itoa(len(v.noID)) + " resource(s) have no id (GPCM-SD-028 treats ids as mandatory; the v2 example's Binary has none)"}
		v.r.Outcome.Issue = append(v.r.Outcome.Issue, is)
	}
}

func (v *validator) noteMeta(res *fhir.Node) {
	if res.Name == "Bundle" && res != v.root && res != v.doc {
		return
	}
	if res.Child("meta") == nil || res.Get("meta.profile") == nil {
		v.noProfile = append(v.noProfile, res.Path)
	}
	if res.Str("id") == "" {
		v.noID = append(v.noID, res.Path)
	}
	if res == v.doc {
		for _, e := range res.All("entry") {
			if r := e.Child("resource").Resource(); r != nil {
				v.noteMeta(r)
			}
		}
	}
}

// reportStructural maps STU3 problems to ITK3 codes: inside the payload
// (document Bundle) they are 20009, elsewhere 20006 (header).
func (v *validator) reportStructural(issues []fhir.Issue) {
	for _, is := range issues {
		code := "20006"
		if v.docPath != "" && (is.Path == v.docPath || strings.HasPrefix(is.Path, v.docPath+".")) {
			code = "20009"
		}
		switch is.Severity {
		case "error":
			v.fail(is.Code, is.Path, is.Message, code)
		case "warning":
			v.issue(SeverityWarning, is.Code, is.Path, is.Message, "")
		default:
			v.issue(SeverityInformation, is.Code, is.Path, is.Message, "")
		}
	}
}

// locatePayload finds the document Bundle: the focus target, else the
// first entry holding a Bundle (so structure errors are still classed).
func (v *validator) locatePayload(entries []*fhir.Node) {
	if len(entries) > 0 {
		if mh := entries[0].Child("resource").Resource(); mh != nil && mh.Name == "MessageHeader" {
			if focus := mh.Child("focus"); focus != nil {
				if res := v.outer[focus.Str("reference")]; res != nil && res.Name == "Bundle" {
					v.doc, v.docPath = res, res.Path
					return
				}
			}
		}
	}
	for _, e := range entries {
		if res := e.Child("resource").Resource(); res != nil && res.Name == "Bundle" {
			v.docPath = res.Path
			return
		}
	}
}

func indexEntries(entries []*fhir.Node) map[string]*fhir.Node {
	m := make(map[string]*fhir.Node, len(entries))
	for _, e := range entries {
		u := e.Str("fullUrl")
		res := e.Child("resource").Resource()
		if u != "" && res != nil {
			if _, dup := m[u]; !dup {
				m[u] = res
			}
		}
	}
	return m
}

func (v *validator) checkFullURLs(entries []*fhir.Node, code string) {
	seen := map[string]bool{}
	for _, e := range entries {
		u := e.Str("fullUrl")
		switch {
		case u == "":
			v.fail("required", e.Path+".fullUrl", "every entry needs a fullUrl so references can resolve", code)
		case seen[u]:
			v.fail("invalid", e.Path+".fullUrl", "two entries share the same fullUrl", code)
		case !strings.HasPrefix(u, "urn:uuid:"):
			v.warn(e.Path+".fullUrl", "fullUrl is not a urn:uuid: (both Send Document examples use urn:uuid: references)")
		}
		seen[u] = true
	}
}

func (v *validator) checkHeader(mh *fhir.Node) {
	p := mh.Path
	v.r.MessageHeaderID = mh.Str("id")
	v.r.SourceEndpoint = mh.Str("source.endpoint")

	// event: Send Document is ITK007C; anything else is a message type this
	// payload specification does not support (10004).
	if ev := mh.Child("event"); ev != nil {
		if ev.Str("system") != SystemMessageEvent {
			v.fail("code-invalid", p+".event.system", "MessageHeader.event.system must be "+SystemMessageEvent, "10004")
		}
		if code := ev.Str("code"); code != EventSendDocument {
			v.fail("code-invalid", p+".event.code", "MessageHeader.event.code must be ITK007C (GP Connect Send Document); this message type is not supported", "10004")
		}
	}
	v.checkHandling(mh)

	if ep := v.r.SourceEndpoint; ep != "" && strings.HasPrefix(strings.ToLower(ep), "urn:") {
		v.warn(p+".source.endpoint", "source.endpoint should be the bare MESH mailbox ID of the sender, not a URN")
	}

	// sender → Organization in the message bundle with an ODS code.
	sender := mh.Child("sender")
	switch ref := sender.Str("reference"); {
	case sender == nil:
		v.fail("required", p+".sender", "MessageHeader.sender is mandatory for Send Document (the sending Organization)", "20006")
	case ref == "":
		v.fail("required", sender.Path+".reference", "MessageHeader.sender must reference the sending Organization entry", "20006")
	default:
		org := v.outer[ref]
		switch {
		case org == nil:
			v.fail("invalid", sender.Path+".reference", "MessageHeader.sender does not resolve to an entry fullUrl in the message bundle", "20006")
		case org.Name != "Organization":
			v.fail("invalid", sender.Path+".reference", "MessageHeader.sender must reference an Organization", "20006")
		default:
			v.senderOrg = org
			v.r.SenderODSCode = identifierValue(org, SystemODSCode)
			if v.r.SenderODSCode == "" {
				v.fail("required", org.Path+".identifier", "the sending Organization needs an identifier with system "+SystemODSCode, "20006")
			}
		}
	}

	// focus → the document Bundle.
	focus := mh.All("focus")
	switch {
	case len(focus) == 0:
		v.fail("required", p+".focus", "MessageHeader.focus must reference the document Bundle (GPCM-SD-001)", "20006")
	case len(focus) > 1:
		v.fail("invalid", p+".focus", "MessageHeader.focus must reference exactly one document Bundle", "20006")
	default:
		ref := focus[0].Str("reference")
		res := v.outer[ref]
		switch {
		case ref == "":
			v.fail("required", focus[0].Path+".reference", "MessageHeader.focus must reference the document Bundle entry", "20006")
		case res == nil:
			v.fail("invalid", focus[0].Path+".reference", "MessageHeader.focus does not resolve to an entry fullUrl in the message bundle", "20006")
		case res.Name != "Bundle":
			v.fail("invalid", focus[0].Path+".reference", "MessageHeader.focus must reference a Bundle of type document", "20006")
		case res.Str("type") != "document":
			v.fail("invalid", res.Path+".type", "the payload Bundle referenced by MessageHeader.focus must be of type document", "20009")
		}
	}
}

func (v *validator) checkHandling(mh *fhir.Node) {
	p := mh.Path
	var handling *fhir.Node
	for _, e := range mh.All("extension") {
		if e.Str("url") == ExtMessageHandling {
			if handling != nil {
				v.fail("structure", e.Path, "Extension-ITK-MessageHandling-2 appears more than once", "10001")
				continue
			}
			handling = e
		}
	}
	if handling == nil {
		v.fail("required", p+".extension", "the MessageHeader has no "+ExtMessageHandling+" extension (ITK3 handling specification)", "10001")
		return
	}
	keys := map[string]*fhir.Node{} // Extension-ITK-MessageHandling-2 sub-extensions by url
	for _, k := range handling.All("extension") {
		url := k.Str("url")
		if _, dup := keys[url]; dup {
			v.fail("structure", k.Path, "handling key "+safeKey(url)+" appears more than once", "10001")
			continue
		}
		switch url {
		case "BusAckRequested", "InfAckRequested", "RecipientType", "MessageDefinition", "SenderReference", "LocalExtension":
			keys[url] = k
		default:
			v.warn(k.Path, "unknown ITK3 handling key "+safeKey(url)+" ignored")
		}
	}
	hp := handling.Path
	v.ackFlag(keys, hp, "BusAckRequested", "10003", "a business acknowledgement (30001-30003)")
	v.ackFlag(keys, hp, "InfAckRequested", "10002", "an infrastructure acknowledgement (10001-20013)")

	if k, ok := keys["RecipientType"]; !ok {
		v.fail("required", hp+".extension", "handling key RecipientType is missing (FA or FI)", "10010")
	} else if c, ty := k.Choice("value"); ty != "Coding" {
		v.fail("invalid", k.Path, "RecipientType must be a valueCoding", "10010")
	} else {
		if c.Str("system") != SystemRecipientType {
			v.fail("code-invalid", c.Path+".system", "RecipientType system must be "+SystemRecipientType, "10010")
		}
		if code := c.Str("code"); code != "FA" && code != "FI" {
			v.fail("code-invalid", c.Path+".code", "RecipientType must be FA (For Action) or FI (For Information)", "10010")
		}
	}

	if k, ok := keys["MessageDefinition"]; !ok {
		v.fail("required", hp+".extension", "handling key MessageDefinition is missing", "10004")
	} else if ref, ty := k.Choice("value"); ty != "Reference" {
		v.fail("invalid", k.Path, "MessageDefinition must be a valueReference", "10004")
	} else if got := ref.Str("reference"); got != MessageDefinitionURL {
		if base, ver, ok := strings.Cut(got, "|"); ok && base == MessageDefinitionURL && ver != "" {
			v.fail("value", ref.Path+".reference", "MessageDefinition version is not supported", "10005")
		} else {
			v.fail("value", ref.Path+".reference", "MessageDefinition must be "+MessageDefinitionURL, "10004")
		}
	}

	if k, ok := keys["SenderReference"]; !ok {
		v.fail("required", hp+".extension", "handling key SenderReference is missing", "10007")
	} else if s, ty := k.Choice("value"); ty != "String" || s.Value == "" {
		v.fail("invalid", k.Path, "SenderReference must be a non-empty valueString", "10007")
	} else if len([]rune(s.Value)) > maxSenderReference {
		v.fail("value", s.Path, "SenderReference is longer than 255 characters", "10007")
	} else {
		v.r.SenderReference = s.Value
	}

	if k, ok := keys["LocalExtension"]; ok {
		s, ty := k.Choice("value")
		switch {
		case ty != "String":
			v.warn(k.Path, "LocalExtension should be a valueString (v2 value: None)")
		case s.Value == LocalExtensionV2:
		case localExtensionV1[s.Value]:
			v.r.Version = "1"
			v.warn(s.Path, "LocalExtension carries a v1 Send Document value; v2.0.2 expects None and takes the document type from Composition.type")
		default:
			v.warn(s.Path, "LocalExtension is deprecated in v2 and must not identify the document; expected None")
		}
	}
}

func (v *validator) ackFlag(keys map[string]*fhir.Node, hp, name, code, what string) {
	k, ok := keys[name]
	if !ok {
		v.fail("required", hp+".extension", "handling key "+name+" is missing", code)
		return
	}
	b, ty := k.Choice("value")
	switch {
	case ty != "Boolean":
		v.fail("invalid", k.Path, name+" must be a valueBoolean", code)
	case b.Value == "false":
		v.fail("business-rule", b.Path, name+" must be true: Send Document mandates "+what, "10008")
	case b.Value != "true":
		v.fail("value", b.Path, name+" must be true or false", code)
	}
}

// safeKey quotes a handling key name only when it is a plain token.
func safeKey(s string) string {
	if len(s) == 0 || len(s) > 40 {
		return "(unnamed)"
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "(unnamed)"
		}
	}
	return s
}

func safeResourceName(s string) string {
	if len(s) > 64 {
		return "resource"
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return "resource"
		}
	}
	return s
}

// identifierValue returns the value of the first identifier with system.
func identifierValue(res *fhir.Node, system string) string {
	for _, id := range res.All("identifier") {
		if id.Str("system") == system {
			return id.Str("value")
		}
	}
	return ""
}

// parseBirthDate parses a full FHIR date (YYYY-MM-DD).
func parseBirthDate(s string) (time.Time, bool) {
	if len(s) != 10 || !fhir.ValidDate(s) {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02", s)
	return t, err == nil
}
