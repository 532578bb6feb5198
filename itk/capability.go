package itk

import (
	"io"
	"strings"
	"time"
)

// FHIRVersion is the FHIR release the gateway speaks (STU3's last technical
// correction). FHIR clients compare it with their own: HAPI FHIR's generic
// client reads it from [base]/metadata before its first request.
const FHIRVersion = "3.0.2"

// process-message as STU3 defines it (OperationDefinition MessageHeader-process-message).
const processMessageDefinition = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"

// CapabilityOptions describes the gateway instance a CapabilityStatement is for.
type CapabilityOptions struct {
	// BaseURL is the FHIR base of this gateway, e.g.
	// https://gateway.example.nhs.uk/FHIR/STU3 (no trailing slash).
	BaseURL         string
	SoftwareName    string
	SoftwareVersion string
	// Date is when the statement was published: the process start.
	Date time.Time
	// Security is markdown telling callers how to authenticate.
	Security string
}

// EncodeCapabilityStatement writes the gateway's STU3 CapabilityStatement
// in format f: an instance statement for a server whose one operation is
// $process-message, receiving GP Connect Send Document ITK3 messages.
func EncodeCapabilityStatement(w io.Writer, f Format, o CapabilityOptions) error {
	base := strings.TrimRight(o.BaseURL, "/")
	formats := []string{FormatJSON.ContentType(), FormatXML.ContentType()}
	root := wResource("", "CapabilityStatement", wFlatten(
		[]*wireElem{
			wPrim("id", "mesh-gateway"),
			wPrim("url", base+"/metadata"),
			wPrim("version", o.SoftwareVersion),
			wPrim("name", "MESHGateway"),
			wPrim("title", "MESH Gateway"),
			wPrim("status", "active"),
			wBool("experimental", false),
			wPrim("date", o.Date.UTC().Format(time.RFC3339)),
			wPrim("publisher", "MESH Gateway"),
			wPrim("description", "Sends GP Connect Send Document ITK3 messages through NHS MESH to the patient's registered practice, "+
				"tracks them durably and reports every state and ITK3 acknowledgement."),
			wPrim("kind", "instance"),
			wComplex("software", wPrim("name", o.SoftwareName), wPrim("version", o.SoftwareVersion)),
			wComplex("implementation", wPrim("description", "MESH Gateway FHIR STU3 messaging endpoint"), wPrim("url", base)),
			wPrim("fhirVersion", FHIRVersion),
			wPrim("acceptUnknown", "no"),
		},
		wPrims("format", formats...),
		[]*wireElem{
			wList("rest",
				wPrim("mode", "server"),
				wPrim("documentation", "POST an ITK3 message Bundle (or a Parameters resource whose content parameter holds it) to "+
					"$process-message. The answer is 202 Accepted with an OperationOutcome carrying the tracking id, or an "+
					"OperationOutcome listing every problem."),
				wComplex("security", wBool("cors", false), wPrim("description", o.Security)),
				wList("operation", wPrim("name", "process-message"), wReference("definition", processMessageDefinition)),
			),
			wList("messaging",
				wList("endpoint",
					wCoding("protocol", "http://hl7.org/fhir/message-transport", "http", "HTTP"),
					wPrim("address", base+"/$process-message"),
				),
				wPrim("documentation", "Messages are forwarded through MESH with workflow "+WorkflowSendDocument+
					"; the practice's ITK3 acknowledgements are collected from MESH and reported by webhook or polling."),
				wList("supportedMessage", wPrim("mode", "receiver"), wReference("definition", MessageDefinitionURL)),
			),
		},
	)...)
	_, err := encodeWire(w, root, f, false)
	return err
}

// EncodeFormat writes the outcome as FHIR STU3 in format f (the JSON shape
// of the struct is the same as encoding/json gives; XML needs the wire
// encoder's value attributes).
func (o *OperationOutcome) EncodeFormat(w io.Writer, f Format) error {
	var issues []*wireElem
	for _, is := range o.Issue {
		var details *wireElem
		if d := is.Details; d != nil {
			var parts []*wireElem
			for _, c := range d.Coding {
				parts = append(parts, wCodingList(c.System, c.Code, c.Display))
			}
			details = wComplex("details", append(parts, wPrim("text", d.Text))...)
		}
		issues = append(issues, wList("issue", wFlatten(
			[]*wireElem{wPrim("severity", is.Severity), wPrim("code", is.Code), details, wPrim("diagnostics", is.Diagnostics)},
			wPrims("location", is.Location...),
			wPrims("expression", is.Expression...),
		)...))
	}
	var meta *wireElem
	if o.Meta != nil {
		meta = wComplex("meta", wPrims("profile", o.Meta.Profile...)...)
	}
	root := wResource("", "OperationOutcome", append([]*wireElem{wPrim("id", o.ID), meta}, issues...)...)
	_, err := encodeWire(w, root, f, false)
	return err
}
