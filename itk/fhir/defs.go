package fhir

import (
	"strings"
	"sync"
)

// STU3 (3.0.2) structure definitions, element by element in definition order,
// for the resources and datatypes Send Document and ITK3 responses use.
// Line format: "Type Base: name:type[|type]card ..." where card is
// ? (0..1), * (0..*), ! (1..1), + (1..*), and a name ending in [x] is a
// choice. Base is E (Element), B (BackboneElement), R (Resource) or
// D (DomainResource); their inherited elements are added automatically.
// Backbone types are named Resource.path (e.g. Bundle.entry).
const stu3Definitions = `
Extension E: url:uri! value[x]:` + openTypes + `?
Meta E: versionId:id? lastUpdated:instant? profile:uri* security:Coding* tag:Coding*
Narrative E: status:code! div:xhtml!
Identifier E: use:code? type:CodeableConcept? system:uri? value:string? period:Period? assigner:Reference?
HumanName E: use:code? text:string? family:string? given:string* prefix:string* suffix:string* period:Period?
Address E: use:code? type:code? text:string? line:string* city:string? district:string? state:string? postalCode:string? country:string? period:Period?
ContactPoint E: system:code? value:string? use:code? rank:positiveInt? period:Period?
Coding E: system:uri? version:string? code:code? display:string? userSelected:boolean?
CodeableConcept E: coding:Coding* text:string?
Reference E: reference:string? identifier:Identifier? display:string?
Period E: start:dateTime? end:dateTime?
Attachment E: contentType:code? language:code? data:base64Binary? url:uri? size:unsignedInt? hash:base64Binary? title:string? creation:dateTime?
Quantity E: value:decimal? comparator:code? unit:string? system:uri? code:code?
Age E: value:decimal? comparator:code? unit:string? system:uri? code:code?
Count E: value:decimal? comparator:code? unit:string? system:uri? code:code?
Distance E: value:decimal? comparator:code? unit:string? system:uri? code:code?
Duration E: value:decimal? comparator:code? unit:string? system:uri? code:code?
Money E: value:decimal? comparator:code? unit:string? system:uri? code:code?
SimpleQuantity E: value:decimal? unit:string? system:uri? code:code?
Annotation E: author[x]:Reference|string? time:dateTime? text:string!
Range E: low:SimpleQuantity? high:SimpleQuantity?
Ratio E: numerator:Quantity? denominator:Quantity?
SampledData E: origin:SimpleQuantity! period:decimal! factor:decimal? lowerLimit:decimal? upperLimit:decimal? dimensions:positiveInt! data:string!
Signature E: type:Coding+ when:instant! who[x]:uri|Reference! onBehalfOf[x]:uri|Reference? contentType:code? blob:base64Binary?
Timing E: event:dateTime* repeat:Timing.repeat? code:CodeableConcept?
Timing.repeat E: bounds[x]:Duration|Range|Period? count:integer? countMax:integer? duration:decimal? durationMax:decimal? durationUnit:code? frequency:integer? frequencyMax:integer? period:decimal? periodMax:decimal? periodUnit:code? dayOfWeek:code* timeOfDay:time* when:code* offset:unsignedInt?

Bundle R: identifier:Identifier? type:code! total:unsignedInt? link:Bundle.link* entry:Bundle.entry* signature:Signature?
Bundle.link B: relation:string! url:uri!
Bundle.entry B: link:Bundle.link* fullUrl:uri? resource:Resource? search:Bundle.entry.search? request:Bundle.entry.request? response:Bundle.entry.response?
Bundle.entry.search B: mode:code? score:decimal?
Bundle.entry.request B: method:code! url:uri! ifNoneMatch:string? ifModifiedSince:instant? ifMatch:string? ifNoneExist:string?
Bundle.entry.response B: status:string! location:uri? etag:string? lastModified:instant? outcome:Resource?

Binary R: contentType:code! securityContext:Reference? content:base64Binary!

MessageHeader D: event:Coding! destination:MessageHeader.destination* receiver:Reference? sender:Reference? timestamp:instant! enterer:Reference? author:Reference? source:MessageHeader.source! responsible:Reference? reason:CodeableConcept? response:MessageHeader.response? focus:Reference*
MessageHeader.destination B: name:string? target:Reference? endpoint:uri!
MessageHeader.source B: name:string? software:string? version:string? contact:ContactPoint? endpoint:uri!
MessageHeader.response B: identifier:id! code:code! details:Reference?

Organization D: identifier:Identifier* active:boolean? type:CodeableConcept* name:string? alias:string* telecom:ContactPoint* address:Address* partOf:Reference? contact:Organization.contact* endpoint:Reference*
Organization.contact B: purpose:CodeableConcept? name:HumanName? telecom:ContactPoint* address:Address?

Composition D: identifier:Identifier? status:code! type:CodeableConcept! class:CodeableConcept? subject:Reference! encounter:Reference? date:dateTime! author:Reference+ title:string! confidentiality:code? attester:Composition.attester* custodian:Reference? relatesTo:Composition.relatesTo* event:Composition.event* section:Composition.section*
Composition.attester B: mode:code+ time:dateTime? party:Reference?
Composition.relatesTo B: code:code! target[x]:Identifier|Reference!
Composition.event B: code:CodeableConcept* period:Period? detail:Reference*
Composition.section B: title:string? code:CodeableConcept? text:Narrative? mode:code? orderedBy:CodeableConcept? entry:Reference* emptyReason:CodeableConcept? section:Composition.section*

Patient D: identifier:Identifier* active:boolean? name:HumanName* telecom:ContactPoint* gender:code? birthDate:date? deceased[x]:boolean|dateTime? address:Address* maritalStatus:CodeableConcept? multipleBirth[x]:boolean|integer? photo:Attachment* contact:Patient.contact* animal:Patient.animal? communication:Patient.communication* generalPractitioner:Reference* managingOrganization:Reference? link:Patient.link*
Patient.contact B: relationship:CodeableConcept* name:HumanName? telecom:ContactPoint* address:Address? gender:code? organization:Reference? period:Period?
Patient.animal B: species:CodeableConcept! breed:CodeableConcept? genderStatus:CodeableConcept?
Patient.communication B: language:CodeableConcept! preferred:boolean?
Patient.link B: other:Reference! type:code!

Practitioner D: identifier:Identifier* active:boolean? name:HumanName* telecom:ContactPoint* address:Address* gender:code? birthDate:date? photo:Attachment* qualification:Practitioner.qualification* communication:CodeableConcept*
Practitioner.qualification B: identifier:Identifier* code:CodeableConcept! period:Period? issuer:Reference?

PractitionerRole D: identifier:Identifier* active:boolean? period:Period? practitioner:Reference? organization:Reference? code:CodeableConcept* specialty:CodeableConcept* location:Reference* healthcareService:Reference* telecom:ContactPoint* availableTime:PractitionerRole.availableTime* notAvailable:PractitionerRole.notAvailable* availabilityExceptions:string? endpoint:Reference*
PractitionerRole.availableTime B: daysOfWeek:code* allDay:boolean? availableStartTime:time? availableEndTime:time?
PractitionerRole.notAvailable B: description:string! during:Period?

Device D: identifier:Identifier* udi:Device.udi? status:code? type:CodeableConcept? lotNumber:string? manufacturer:string? manufactureDate:dateTime? expirationDate:dateTime? model:string? version:string? patient:Reference? owner:Reference? contact:ContactPoint* location:Reference? url:uri? note:Annotation* safety:CodeableConcept*
Device.udi B: deviceIdentifier:string? name:string? jurisdiction:uri? carrierHRF:string? carrierAIDC:base64Binary? issuer:uri? entryType:code?

Encounter D: identifier:Identifier* status:code! statusHistory:Encounter.statusHistory* class:Coding? classHistory:Encounter.classHistory* type:CodeableConcept* priority:CodeableConcept? subject:Reference? episodeOfCare:Reference* incomingReferral:Reference* participant:Encounter.participant* appointment:Reference? period:Period? length:Duration? reason:CodeableConcept* diagnosis:Encounter.diagnosis* account:Reference* hospitalization:Encounter.hospitalization? location:Encounter.location* serviceProvider:Reference? partOf:Reference?
Encounter.statusHistory B: status:code! period:Period!
Encounter.classHistory B: class:Coding! period:Period!
Encounter.participant B: type:CodeableConcept* period:Period? individual:Reference?
Encounter.diagnosis B: condition:Reference! role:CodeableConcept? rank:positiveInt?
Encounter.hospitalization B: preAdmissionIdentifier:Identifier? origin:Reference? admitSource:CodeableConcept? reAdmission:CodeableConcept? dietPreference:CodeableConcept* specialCourtesy:CodeableConcept* specialArrangement:CodeableConcept* destination:Reference? dischargeDisposition:CodeableConcept?
Encounter.location B: location:Reference! status:code? period:Period?

Observation D: identifier:Identifier* basedOn:Reference* status:code! category:CodeableConcept* code:CodeableConcept! subject:Reference? context:Reference? effective[x]:dateTime|Period? issued:instant? performer:Reference* value[x]:` + observationValues + `? dataAbsentReason:CodeableConcept? interpretation:CodeableConcept? comment:string? bodySite:CodeableConcept? method:CodeableConcept? specimen:Reference? device:Reference? referenceRange:Observation.referenceRange* related:Observation.related* component:Observation.component*
Observation.referenceRange B: low:SimpleQuantity? high:SimpleQuantity? type:CodeableConcept? appliesTo:CodeableConcept* age:Range? text:string?
Observation.related B: type:code? target:Reference!
Observation.component B: code:CodeableConcept! value[x]:` + observationValues + `? dataAbsentReason:CodeableConcept? interpretation:CodeableConcept? referenceRange:Observation.referenceRange*

OperationOutcome D: issue:OperationOutcome.issue+
OperationOutcome.issue B: severity:code! code:code! details:CodeableConcept? diagnostics:string? location:string* expression:string*

Location D: identifier:Identifier* status:code? operationalStatus:Coding? name:string? alias:string* description:string? mode:code? type:CodeableConcept? telecom:ContactPoint* address:Address? physicalType:CodeableConcept? position:Location.position? managingOrganization:Reference? partOf:Reference? endpoint:Reference*
Location.position B: longitude:decimal! latitude:decimal! altitude:decimal?

DocumentReference D: masterIdentifier:Identifier? identifier:Identifier* status:code! docStatus:code? type:CodeableConcept! class:CodeableConcept? subject:Reference? created:dateTime? indexed:instant! author:Reference* authenticator:Reference? custodian:Reference? relatesTo:DocumentReference.relatesTo* description:string? securityLabel:CodeableConcept* content:DocumentReference.content+ context:DocumentReference.context?
DocumentReference.relatesTo B: code:code! target:Reference!
DocumentReference.content B: attachment:Attachment! format:Coding?
DocumentReference.context B: encounter:Reference? event:CodeableConcept* period:Period? facilityType:CodeableConcept? practiceSetting:CodeableConcept? sourcePatientInfo:Reference? related:DocumentReference.context.related*
DocumentReference.context.related B: identifier:Identifier? ref:Reference?

List D: identifier:Identifier* status:code! mode:code! title:string? code:CodeableConcept? subject:Reference? encounter:Reference? date:dateTime? source:Reference? orderedBy:CodeableConcept? note:Annotation* entry:List.entry* emptyReason:CodeableConcept?
List.entry B: flag:CodeableConcept? deleted:boolean? date:dateTime? item:Reference!
`

// openTypes is STU3 Extension.value[x].
const openTypes = "base64Binary|boolean|code|date|dateTime|decimal|id|instant|integer|markdown|oid|positiveInt|string|time|unsignedInt|uri|" +
	"Address|Age|Annotation|Attachment|CodeableConcept|Coding|ContactPoint|Count|Distance|Duration|HumanName|Identifier|Money|Period|Quantity|Range|Ratio|Reference|SampledData|Signature|Timing|Meta"

const observationValues = "Quantity|CodeableConcept|string|boolean|Range|Ratio|SampledData|Attachment|time|dateTime|Period"

var primitiveTypes = map[string]bool{
	"boolean": true, "integer": true, "string": true, "decimal": true, "uri": true, "base64Binary": true,
	"instant": true, "date": true, "dateTime": true, "time": true, "code": true, "oid": true, "id": true,
	"markdown": true, "unsignedInt": true, "positiveInt": true, "xhtml": true,
}

type elemDef struct {
	name   string // without [x]
	choice bool
	types  []string
	min    int
	max    int // -1 = unbounded
	order  int
	attr   bool // XML attribute (Element.id, Extension.url)
}

type typeDef struct {
	name     string
	resource bool
	elems    []*elemDef
	byName   map[string]*elemDef
}

// lookup finds the definition for a child name and the concrete type,
// resolving choice names such as valueBoolean.
func (t *typeDef) lookup(name string) (*elemDef, string) {
	if d, ok := t.byName[name]; ok && !d.choice {
		return d, d.types[0]
	}
	for _, d := range t.elems {
		if !d.choice || len(name) <= len(d.name) || !strings.HasPrefix(name, d.name) {
			continue
		}
		suffix := name[len(d.name):]
		for _, ty := range d.types {
			if upperFirst(ty) == suffix {
				return d, ty
			}
		}
	}
	return nil, ""
}

// Schema holds the parsed definitions; immutable once built.
type Schema struct {
	types map[string]*typeDef
}

var stu3Schema = sync.OnceValue(func() *Schema { return parseSchema(stu3Definitions) })

// STU3 returns the built-in STU3 schema.
func STU3() *Schema { return stu3Schema() }

// Knows reports whether a resource type is in the schema.
func (s *Schema) Knows(resourceType string) bool {
	t, ok := s.types[resourceType]
	return ok && t.resource
}

func parseSchema(src string) *Schema {
	s := &Schema{types: make(map[string]*typeDef)}
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		head, body, ok := strings.Cut(line, ":")
		if !ok {
			panic("fhir: bad definition line " + line)
		}
		name, base, _ := strings.Cut(head, " ")
		t := &typeDef{name: name, byName: make(map[string]*elemDef)}
		var inherited string
		switch base {
		case "E":
			inherited = "id:string?@ extension:Extension*"
		case "B":
			inherited = "id:string?@ extension:Extension* modifierExtension:Extension*"
		case "R":
			inherited = "id:id? meta:Meta? implicitRules:uri? language:code?"
			t.resource = true
		case "D":
			inherited = "id:id? meta:Meta? implicitRules:uri? language:code? text:Narrative? contained:Resource* extension:Extension* modifierExtension:Extension*"
			t.resource = true
		default:
			panic("fhir: bad base in " + line)
		}
		for _, f := range strings.Fields(inherited + " " + body) {
			attr := strings.HasSuffix(f, "@")
			f = strings.TrimSuffix(f, "@")
			en, spec, _ := strings.Cut(f, ":")
			card := spec[len(spec)-1]
			d := &elemDef{types: strings.Split(spec[:len(spec)-1], "|"), order: len(t.elems), attr: attr}
			if strings.HasSuffix(en, "[x]") {
				d.name, d.choice = strings.TrimSuffix(en, "[x]"), true
			} else {
				d.name = en
			}
			switch card {
			case '?':
				d.min, d.max = 0, 1
			case '*':
				d.min, d.max = 0, -1
			case '!':
				d.min, d.max = 1, 1
			case '+':
				d.min, d.max = 1, -1
			default:
				panic("fhir: bad cardinality in " + f)
			}
			if name == "Extension" && d.name == "url" {
				d.attr = true
			}
			t.elems = append(t.elems, d)
			t.byName[d.name] = d
		}
		s.types[name] = t
	}
	return s
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-32) + s[1:]
}
