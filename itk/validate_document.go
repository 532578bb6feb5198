package itk

import (
	"strconv"
	"strings"
	"time"

	"github.com/meshgateway/gateway/itk/fhir"
)

// STU3 Composition.confidentiality codes (v3 Confidentiality).
var confidentialityCodes = map[string]bool{"U": true, "L": true, "M": true, "N": true, "R": true, "V": true}

// Resource types Composition.author may reference in STU3 (Device as
// ITK-Device-1); PractitionerRole and Organization only came in R4.
var authorTypes = map[string]bool{"Practitioner": true, "Device": true, "Patient": true, "RelatedPerson": true}

// checkDocument applies the ITK-Document-Bundle-1 / CareConnect rules to the
// payload (itk3-send-document.md §1.5, §4). Every failure here is 20009
// unless an attachment type is unsupported (20005).
func (v *validator) checkDocument() {
	doc := v.doc
	if doc.Str("type") != "document" {
		return // reported by checkHeader
	}
	// STU3 bdl-9: a document Bundle has an identifier with system and value.
	if id := doc.Child("identifier"); id == nil || id.Str("system") == "" || id.Str("value") == "" {
		v.fail("required", doc.Path+".identifier", "a document Bundle needs an identifier with system and value (bdl-9)", "20009")
	}
	entries := doc.All("entry")
	v.checkFullURLs(entries, "20009")
	v.docIndex = indexEntries(entries)
	if len(entries) == 0 {
		v.fail("required", doc.Path+".entry", "the document Bundle has no entries; the first must be the Composition", "20009")
		return
	}
	comp := entries[0].Child("resource").Resource()
	if comp == nil || comp.Name != "Composition" {
		v.fail("invalid", doc.Path+".entry[0].resource", "the first entry of the document Bundle must be the Composition", "20009")
		return
	}
	v.r.CompositionID = comp.Str("id")
	cp := comp.Path

	if s := comp.Str("status"); s != "" && s != "final" {
		v.fail("value", cp+".status", "Composition.status must be final", "20009")
	}
	v.checkDocumentType(comp)
	switch c := comp.Str("confidentiality"); {
	case c == "R":
		v.fail("business-rule", cp+".confidentiality", "restricted (R) documents must not be sent via Send Document (v2.0.2); a receiver rejects them", "20009")
	case c != "" && !confidentialityCodes[c]:
		v.fail("code-invalid", cp+".confidentiality", "Composition.confidentiality is not a valid confidentiality code", "20009")
	}

	if patient := v.resolveIn(comp.Child("subject"), cp+".subject", "Composition.subject", "Patient"); patient != nil {
		v.checkPatient(patient)
	}
	for i, a := range comp.All("author") {
		if res := v.resolveIn(a, cp+".author["+strconv.Itoa(i)+"]", "Composition.author", ""); res != nil && !authorTypes[res.Name] {
			v.fail("invalid", a.Path+".reference", "Composition.author must reference a Practitioner, Device, Patient or RelatedPerson (STU3)", "20009")
		}
	}
	if c := comp.Child("custodian"); c != nil {
		v.resolveIn(c, c.Path, "Composition.custodian", "Organization")
	}
	if e := comp.Child("encounter"); e != nil {
		v.resolveIn(e, e.Path, "Composition.encounter", "Encounter")
	}
	for _, rt := range comp.All("relatesTo") {
		if rt.Str("code") != "replaces" {
			v.warn(rt.Path+".code", "Send Document uses relatesTo only with code replaces")
		}
	}

	// Attachments: every Binary referenced from a section entry.
	referenced := map[*fhir.Node]bool{}
	var walk func(sections []*fhir.Node)
	walk = func(sections []*fhir.Node) {
		for _, s := range sections {
			// STU3 cmp-1: a section has text, entries or sub-sections.
			if s.Child("text") == nil && len(s.All("entry")) == 0 && len(s.All("section")) == 0 {
				v.fail("required", s.Path, "a Composition section needs text, entries or sub-sections (cmp-1)", "20009")
			}
			for _, e := range s.All("entry") {
				if res := v.docIndex[e.Str("reference")]; res != nil {
					referenced[res] = true
				}
			}
			walk(s.All("section"))
		}
	}
	sections := comp.All("section")
	walk(sections)
	if len(sections) == 0 {
		v.fail("required", cp+".section", "the Composition has no section; section.entry must reference every attachment (Binary)", "20009")
	}
	binaries := 0
	for _, e := range entries {
		res := e.Child("resource").Resource()
		if res == nil || res.Name != "Binary" {
			continue
		}
		binaries++
		if !referenced[res] {
			v.fail("invalid", res.Path, "this Binary is not referenced from Composition.section.entry (every attachment must be)", "20009")
		}
		if ct := res.Str("contentType"); ct != "" {
			if _, ok := AttachmentContentType(ct); !ok {
				v.fail("not-supported", res.Path+".contentType", "attachment MIME type is not one of the supported types", "20005")
			}
		}
	}
	if binaries == 0 {
		v.fail("required", doc.Path+".entry", "the document Bundle carries no attachment (Binary)", "20009")
	}
	v.checkReferences(doc)
}

// checkDocumentType: v2 takes the document type from Composition.type, a
// SNOMED code (record composition type refset); v1 used 371531000.
func (v *validator) checkDocumentType(comp *fhir.Node) {
	t := comp.Child("type")
	if t == nil {
		return // required: reported structurally
	}
	for _, c := range t.All("coding") {
		if c.Str("system") == SystemSNOMED && c.Str("code") != "" {
			code := c.Str("code")
			if _, err := strconv.ParseUint(code, 10, 64); err != nil || len(code) < 6 || len(code) > 18 {
				v.fail("code-invalid", c.Path+".code", "Composition.type code is not a SNOMED CT concept id", "20009")
			}
			return
		}
	}
	v.fail("required", t.Path+".coding", "Composition.type needs a SNOMED CT coding (system "+SystemSNOMED+") naming the document type", "20009")
}

// resolveIn resolves a Reference inside the document bundle and checks the
// target type (want "" = any). It reports and returns nil on failure.
func (v *validator) resolveIn(ref *fhir.Node, path, what, want string) *fhir.Node {
	if ref == nil {
		return nil // cardinality is reported structurally
	}
	target := ref.Str("reference")
	if target == "" {
		v.fail("required", path+".reference", what+" must reference an entry in the document Bundle", "20009")
		return nil
	}
	res := v.docIndex[target]
	if res == nil {
		return nil // reported by checkReferences
	}
	if want != "" && res.Name != want {
		v.fail("invalid", path+".reference", what+" must reference a "+want, "20009")
		return nil
	}
	return res
}

// checkReferences: every literal reference in the payload must resolve to
// an entry fullUrl of the document Bundle (GPCM-SD-*: all references are
// urn:uuid: fullUrls within the message).
func (v *validator) checkReferences(doc *fhir.Node) {
	var walk func(n *fhir.Node)
	walk = func(n *fhir.Node) {
		if n.Type == "Reference" {
			if r := n.Str("reference"); r != "" && !strings.HasPrefix(r, "#") && v.docIndex[r] == nil {
				v.fail("invalid", n.Path+".reference", "reference does not resolve to an entry fullUrl in the document Bundle", "20009")
			}
		}
		for _, c := range n.Children {
			walk(c)
		}
	}
	for _, e := range doc.All("entry") {
		walk(e)
	}
}

func (v *validator) checkPatient(pt *fhir.Node) {
	pp := pt.Path
	var nhs *fhir.Node
	for _, id := range pt.All("identifier") {
		if id.Str("system") == SystemNHSNumber {
			nhs = id
			break
		}
	}
	if nhs == nil {
		v.fail("required", pp+".identifier", "the Patient needs an NHS number identifier (system "+SystemNHSNumber+")", "20009")
	} else {
		n := nhs.Str("value")
		switch {
		case n == "":
			v.fail("required", nhs.Path+".value", "the NHS number identifier has no value", "20009")
		case len(n) != 10 || strings.Trim(n, "0123456789") != "":
			v.fail("value", nhs.Path+".value", "the NHS number must be 10 digits", "20009")
		case !ValidNHSNumber(n):
			v.issue(nhsCheckDigitSeverity, "value", nhs.Path+".value",
				"the NHS number fails the Modulus 11 check digit (MESH GP lookup would fail with EPL-152; a receiver applying the check returns 20009)", "20009")
		}
	}

	switch bd := pt.Str("birthDate"); {
	case bd == "":
		v.fail("required", pp+".birthDate", "the Patient needs a birthDate (used for MESH GP lookup)", "20009")
	case len(bd) != 10:
		v.fail("value", pp+".birthDate", "the Patient birthDate must be a full date YYYY-MM-DD", "20009")
	default:
		if t, ok := parseBirthDate(bd); ok && t.After(time.Now()) {
			v.fail("value", pp+".birthDate", "the Patient birthDate is in the future", "20009")
		}
	}

	var official *fhir.Node
	for _, n := range pt.All("name") {
		if n.Str("use") == "official" {
			official = n
			break
		}
	}
	switch {
	case official == nil:
		v.fail("required", pp+".name", "the Patient needs a name with use official", "20009")
	case official.Str("family") == "":
		v.fail("required", official.Path+".family", "the Patient's official name needs a family name (used for MESH GP lookup)", "20009")
	}
}

// metadata derives the MESH metadata for a valid message, using the same
// subject template as Build.
func (v *validator) metadata() *MeshMetadata {
	if v.doc == nil {
		return nil
	}
	comp := v.doc.Get("entry.resource").Resource()
	if comp == nil {
		return nil
	}
	pt := v.docIndex[comp.Str("subject.reference")]
	if pt == nil {
		return nil
	}
	req := &SendRequest{}
	req.Patient.NHSNumber = identifierValue(pt, SystemNHSNumber)
	for _, n := range pt.All("name") {
		if n.Str("use") == "official" {
			req.Patient.Name = HumanName{Family: n.Str("family"), Given: values(n.All("given")), Prefix: values(n.All("prefix"))}
			break
		}
	}
	birth, ok := parseBirthDate(pt.Str("birthDate"))
	if !ok {
		return nil
	}
	req.Documents = []Document{{Title: comp.Str("title")}}
	req.Sender.ODSCode = v.r.SenderODSCode
	if v.senderOrg != nil {
		req.Sender.Name = v.senderOrg.Str("name")
	}
	if cust := v.docIndex[comp.Str("custodian.reference")]; cust != nil && cust.Name == "Organization" {
		req.CareSetting = &CareSetting{Organization: &Organization{ODSCode: identifierValue(cust, SystemODSCode), Name: cust.Str("name")}}
	}
	// The document version: ITK-Document-Bundle-1's meta.versionId, or the
	// Composition's (where earlier builds of this gateway put it).
	docVersion := v.doc.Str("meta.versionId")
	if docVersion == "" {
		docVersion = comp.Str("meta.versionId")
	}
	if ver, err := strconv.Atoi(docVersion); err == nil && ver > 0 {
		req.Version = ver
	} else if comp.Child("relatesTo") != nil {
		req.Replaces = &Replacement{}
	}
	fileID := v.r.BundleID
	if fileID == "" {
		fileID = v.r.MessageHeaderID
	}
	return &MeshMetadata{
		WorkflowID:  WorkflowSendDocument,
		To:          GPProviderAddress(req.Patient.NHSNumber, birth, req.Patient.Name.Family),
		Subject:     SendSubject(req),
		LocalID:     v.r.SenderODSCode,
		FileName:    fileID + "." + string(v.format),
		ContentType: v.format.ContentType(),
	}
}

func values(nodes []*fhir.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		if n.Value != "" {
			out = append(out, n.Value)
		}
	}
	return out
}
