package itk

import (
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/meshgateway/gateway/itk/fhir"
)

// Profiles and fixed values of the Send Document message
// (itk3-send-document.md §1). Unexported: the validator keeps its own list.
const (
	buildProfileMessageBundle  = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Message-Bundle-1"
	buildProfileMessageHeader  = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-MessageHeader-2"
	buildProfileHeaderOrg      = "https://fhir.nhs.uk/STU3/StructureDefinition/CareConnect-ITK-Header-Organization-1"
	buildProfileDocumentBundle = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Document-Bundle-1"
	buildProfileComposition    = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Composition-1"
	buildProfilePatient        = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Patient-1"
	buildProfilePractitioner   = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Practitioner-1"
	buildProfileOrganization   = "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Organization-1"
	buildProfileDevice         = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Device-1"
	buildProfileBinary         = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Attachment-Binary-1"
	buildProfileOutcome        = "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Response-OperationOutcome-1"

	buildSystemUUID         = "https://tools.ietf.org/html/rfc4122"
	buildExtCareSettingType = "https://fhir.hl7.org.uk/STU3/StructureDefinition/Extension-CareConnect-CareSettingType-1"
	// The URL CareConnect-Patient-1 (the Patient's declared profile) defines;
	// the v2 example's GP Connect URL belongs to another profile, unknown to
	// a validator loaded with the CareConnect STU3 package.
	buildExtNHSNumberVerif      = ExtNHSNumberVerificationV1
	buildSystemNHSNumberVerif   = "https://fhir.hl7.org.uk/STU3/CodeSystem/CareConnect-NHSNumberVerificationStatus-1"
	buildDisplaySendDocument    = "ITK GP Connect Send Document"
	buildDisplayResponse        = "ITK Response"
	buildLocalExtensionV2       = "None"
	buildUnknownSDSUserID       = "UNK"
	buildFHIRTimestampLayout    = "2006-01-02T15:04:05-07:00"
	buildFHIRTimestampLayoutUTC = "2006-01-02T15:04:05+00:00"
)

// buildInstant renders a FHIR instant with seconds and an explicit offset
// (+00:00 rather than Z, as in the published examples).
func buildInstant(t time.Time) string {
	t = t.Truncate(time.Second)
	if _, offset := t.Zone(); offset == 0 {
		return t.UTC().Format(buildFHIRTimestampLayoutUTC)
	}
	return t.Format(buildFHIRTimestampLayout)
}

func buildURN(id string) string { return "urn:uuid:" + id }

func wMeta(profile string) *wireElem {
	return wComplex("meta", wPrims("profile", profile)...)
}

func wReference(name, target string) *wireElem {
	return wComplex(name, wPrim("reference", target))
}

func wReferenceList(name, target string) *wireElem {
	e := wReference(name, target)
	e.repeats = true
	return e
}

func wCoding(name, system, code, display string) *wireElem {
	return wComplex(name, wPrim("system", system), wPrim("code", code), wPrim("display", display))
}

func wCodingList(system, code, display string) *wireElem {
	e := wCoding("coding", system, code, display)
	e.repeats = true
	return e
}

func wIdentifier(system, value string) *wireElem {
	return wList("identifier", wPrim("system", system), wPrim("value", value))
}

func wSingleIdentifier(system, value string) *wireElem {
	return wComplex("identifier", wPrim("system", system), wPrim("value", value))
}

func wTelecomPhone(phone string) *wireElem {
	if phone == "" {
		return nil
	}
	return wList("telecom", wPrim("system", "phone"), wPrim("value", phone), wPrim("use", "work"))
}

// wOfficialName is a HumanName in STU3 order: use, text, family, given, prefix.
func wOfficialName(n HumanName) *wireElem {
	return wList("name", wFlatten(
		[]*wireElem{wPrim("use", "official"), wPrim("family", strings.TrimSpace(n.Family))},
		wPrims("given", n.Given...),
		wPrims("prefix", n.Prefix...),
	)...)
}

func wEntry(id string, resource *wireElem) *wireElem {
	return wList("entry", wPrim("fullUrl", buildURN(id)), resource)
}

// wResourceWith starts a resource with id and meta.profile (mandatory on
// every resource, GPCM-SD-027/028) followed by its own elements.
func wResourceWith(resType, id, profile string, children ...*wireElem) *wireElem {
	return wResource("resource", resType, append([]*wireElem{wPrim("id", id), wMeta(profile)}, children...)...)
}

// buildMessageBundle builds the whole Send Document message tree.
func buildMessageBundle(req *SendRequest, ids IDs, senderRef string, now time.Time) *wireElem {
	recipientType := req.RecipientType
	if recipientType == "" {
		recipientType = buildRecipientFA
	}
	header := wResourceWith("MessageHeader", ids.MessageHeader, buildProfileMessageHeader,
		buildHandlingExtension(true, recipientType, MessageDefinitionURL, senderRef),
		wCoding("event", SystemMessageEvent, EventSendDocument, buildDisplaySendDocument),
		wReference("sender", buildURN(ids.SenderOrganization)),
		wPrim("timestamp", buildInstant(now)),
		wComplex("source", wPrim("endpoint", strings.TrimSpace(req.Sender.Mailbox))),
		wReferenceList("focus", buildURN(ids.DocumentBundle)),
	)
	headerOrg := wResourceWith("Organization", ids.SenderOrganization, buildProfileHeaderOrg,
		wIdentifier(SystemODSCode, req.Sender.ODSCode),
	)
	root := wResource("", "Bundle",
		wPrim("id", ids.Bundle),
		wMeta(buildProfileMessageBundle),
		wSingleIdentifier(buildSystemUUID, ids.BundleIdentifier),
		wPrim("type", "message"),
		wEntry(ids.MessageHeader, header),
		wEntry(ids.SenderOrganization, headerOrg),
		wEntry(ids.DocumentBundle, buildDocumentBundle(req, ids, now)),
	)
	return root
}

// buildHandlingExtension is Extension-ITK-MessageHandling-2. Requests ask for
// both acks; responses ask for none.
func buildHandlingExtension(acksRequested bool, recipientType, definition, senderRef string) *wireElem {
	return wExt(ExtMessageHandling,
		wExt("BusAckRequested", wBool("valueBoolean", acksRequested)),
		wExt("InfAckRequested", wBool("valueBoolean", acksRequested)),
		wExt("RecipientType", wCoding("valueCoding", SystemRecipientType, recipientType, buildRecipientDisplay[recipientType])),
		wExt("MessageDefinition", wReference("valueReference", definition)),
		wExt("SenderReference", wPrim("valueString", senderRef)),
		wExt("LocalExtension", wPrim("valueString", buildLocalExtensionV2)),
	)
}

func buildDocumentBundle(req *SendRequest, ids IDs, now time.Time) *wireElem {
	entries := []*wireElem{
		wEntry(ids.Composition, buildComposition(req, ids, now)),
		wEntry(ids.Patient, buildPatient(req.Patient, ids.Patient)),
		wEntry(ids.Author, buildAuthor(req.Author, ids.Author)),
		wEntry(ids.CareOrganization, buildCareOrganization(careOrganizationOf(req), ids.CareOrganization)),
	}
	for i := range req.Documents {
		entries = append(entries, wEntry(ids.Binaries[i], buildBinary(&req.Documents[i], ids.Binaries[i])))
	}
	// meta.versionId carries the document version where ITK-Document-Bundle-1
	// (v2) defines it; the Composition carries it too.
	return wResource("resource", "Bundle", wFlatten(
		[]*wireElem{
			wPrim("id", ids.DocumentBundle),
			wComplex("meta", wPrim("versionId", strconv.Itoa(buildDocumentVersion(req))), wPrims("profile", buildProfileDocumentBundle)[0]),
			wSingleIdentifier(buildSystemUUID, ids.DocumentBundle), wPrim("type", "document"),
		},
		entries,
	)...)
}

// buildComposition follows STU3 order: text, extension, identifier, status, type,
// subject, date, author, title, custodian, relatesTo, event, section.
// confidentiality is left out: v2.0.2 receivers reject R, and N is implied.
func buildComposition(req *SendRequest, ids IDs, now time.Time) *wireElem {
	primary := req.Documents[0]
	var careType, event *wireElem
	if cs := req.CareSetting; cs != nil {
		if cs.Type != nil {
			careType = wExt(buildExtCareSettingType,
				wComplex("valueCodeableConcept", wCodingList(SystemSNOMED, cs.Type.Code, cs.Type.Display)))
		}
		if cs.Date != "" {
			event = wList("event", wComplex("period", wPrim("start", cs.Date)))
		}
	}
	var relatesTo *wireElem
	if req.Replaces != nil {
		relatesTo = wList("relatesTo", wPrim("code", "replaces"),
			wComplex("targetIdentifier", wPrim("system", buildSystemUUID), wPrim("value", buildCanonicalReplaces(req.Replaces.DocumentID))))
	}
	section := wList("section", wFlatten(
		[]*wireElem{wPrim("title", primary.Title), buildSectionNarrative(req.Documents)},
		buildBinaryReferences(ids.Binaries[:len(req.Documents)]),
	)...)
	version := strconv.Itoa(buildDocumentVersion(req))
	return wResource("resource", "Composition",
		wPrim("id", ids.Composition),
		// meta.versionId: the document version, as recommended by the v2 guide.
		wComplex("meta", wPrim("versionId", version), wPrims("profile", buildProfileComposition)[0]),
		buildCompositionNarrative(req, version),
		careType,
		wSingleIdentifier(buildSystemUUID, ids.Composition),
		wPrim("status", "final"),
		wComplex("type", wCodingList(SystemSNOMED, primary.Type.Code, primary.Type.Display)),
		wReference("subject", buildURN(ids.Patient)),
		wPrim("date", buildInstant(now)),
		wReferenceList("author", buildURN(ids.Author)),
		wPrim("title", primary.Title),
		wReference("custodian", buildURN(ids.CareOrganization)),
		relatesTo,
		event,
		section,
	)
}

// buildCompositionNarrative is the mandatory Composition.text, in the v2
// guide's form "[document-title] for [patient-name], NHS Number:
// [nhs-number], seen at [practice-name], [ods-code], Version: [version-number]".
func buildCompositionNarrative(req *SendRequest, version string) *wireElem {
	org := careOrganizationOf(req)
	practice := org.Name
	if practice == "" {
		practice = org.ODSCode
	}
	text := req.Documents[0].Title + " for " + buildPatientName(req.Patient.Name) +
		", NHS Number: " + displayNHSNumber(req.Patient.NHSNumber) +
		", seen at " + practice + ", " + org.ODSCode + ", Version: " + version
	div := `<div xmlns="` + fhir.NamespaceXHTML + `"><p>` + buildXHTMLText(text) + `</p></div>`
	return wComplex("text", wPrim("status", "generated"), &wireElem{name: "div", kind: wkXHTML, value: div})
}

// buildBinaryReferences lists every Binary, the primary attachment first (GPCM-SD-032).
func buildBinaryReferences(binaryIDs []string) []*wireElem {
	out := make([]*wireElem, len(binaryIDs))
	for i, id := range binaryIDs {
		out[i] = wReferenceList("entry", buildURN(id))
	}
	return out
}

// buildSectionNarrative lists the attachments for readers that show narrative.
func buildSectionNarrative(docs []Document) *wireElem {
	var b strings.Builder
	b.WriteString(`<div xmlns="` + fhir.NamespaceXHTML + `"><ul>`)
	for _, d := range docs {
		b.WriteString("<li>")
		b.WriteString(buildXHTMLText(d.Title))
		b.WriteString("</li>")
	}
	b.WriteString("</ul></div>")
	return wComplex("text", wPrim("status", "generated"), &wireElem{name: "div", kind: wkXHTML, value: b.String()})
}

// buildXHTMLText escapes text for XHTML, dropping characters XML cannot carry.
func buildXHTMLText(s string) string {
	s = strings.Map(func(r rune) rune {
		if !xmlCharAllowed(r) {
			return '\uFFFD'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	return html.EscapeString(s)
}

// buildPatient: identifier, name, gender, birthDate, address (STU3 order).
func buildPatient(p Patient, id string) *wireElem {
	nhs := wList("identifier",
		wExt(buildExtNHSNumberVerif,
			wComplex("valueCodeableConcept", wCodingList(buildSystemNHSNumberVerif, "01", "Number present and verified"))),
		wPrim("system", SystemNHSNumber),
		wPrim("value", p.NHSNumber),
	)
	var address *wireElem
	if a := p.Address; a != nil {
		address = wList("address", wFlatten(
			[]*wireElem{wPrim("use", "home")},
			wPrims("line", a.Line...),
			[]*wireElem{wPrim("city", a.City), wPrim("district", a.District), wPrim("postalCode", a.PostalCode)},
		)...)
		if len(address.children) == 1 { // only "use": nothing to say
			address = nil
		}
	}
	return wResourceWith("Patient", id, buildProfilePatient,
		nhs,
		wOfficialName(p.Name),
		wPrim("gender", p.Gender),
		wPrim("birthDate", p.BirthDate),
		address,
	)
}

func buildAuthor(a Author, id string) *wireElem {
	if p := a.Practitioner; p != nil {
		// The sdsUserID identifier is mandatory in v2; "UNK" is the guide's
		// value when the practitioner has none.
		sdsUserID := p.SDSUserID
		if sdsUserID == "" {
			sdsUserID = buildUnknownSDSUserID
		}
		sds := wIdentifier(SystemSDSUserID, sdsUserID)
		return wResourceWith("Practitioner", id, buildProfilePractitioner,
			sds,
			wOfficialName(p.Name),
			wTelecomPhone(p.Phone),
		)
	}
	// STU3 Device has no name element: the software's name goes in type.text.
	return wResourceWith("Device", id, buildProfileDevice,
		wComplex("type", wPrim("text", a.Device.Name)),
		wPrim("version", a.Device.Version),
	)
}

func buildCareOrganization(o Organization, id string) *wireElem {
	return wResourceWith("Organization", id, buildProfileOrganization,
		wIdentifier(SystemODSCode, o.ODSCode),
		wPrim("name", o.Name),
		wTelecomPhone(o.Phone),
	)
}

// buildBinary is ITK-Attachment-Binary-1 (Binary is a Resource, not a
// DomainResource: id, meta, contentType, content).
func buildBinary(d *Document, id string) *wireElem {
	contentType, _ := AttachmentContentType(d.ContentType)
	return wResourceWith("Binary", id, buildProfileBinary,
		wPrim("contentType", contentType),
		&wireElem{name: "content", kind: wkBase64, doc: d},
	)
}

func buildCanonicalReplaces(documentID string) string {
	id, _ := buildCanonicalUUID(documentID) // validated by checkSendRequest
	return id
}
