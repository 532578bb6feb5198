package itk

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshgateway/gateway/itk/fhir"
)

// ErrNotAcknowledgement is returned by ParseAck for a readable message
// that is not an ITK3 response (event ITK008M).
var ErrNotAcknowledgement = errors.New("itk: not an ITK3 response (MessageHeader.event is not ITK008M)")

// ParseAck reads an ITK3 response (event ITK008M) leniently: acks come from
// many GP systems, so FHIR structure faults are ignored and only what is
// needed is read. The response code is the OperationOutcome issue coding
// with system ITK-ResponseCodes-1, else any 5-digit coding code. Errors never
// contain message content.
func ParseAck(data []byte) (*Acknowledgement, error) {
	f := DetectFormat(data)
	if f == "" {
		return nil, errors.New("itk: parse ack: neither XML nor JSON")
	}
	root, err := fhir.Parse(data, fhir.Format(f), fhir.DefaultMaxDepth)
	if err != nil {
		return nil, fmt.Errorf("itk: parse ack: %w", err)
	}
	info := bundleInfo(root)
	if info.MessageHeaderID == "" && info.Event == "" {
		return nil, errors.New("itk: parse ack: no MessageHeader in a message Bundle")
	}
	if info.Event != EventResponse {
		return nil, ErrNotAcknowledgement
	}
	mh := info.header
	ack := &Acknowledgement{
		Format:          f,
		RespondsTo:      mh.Str("response.identifier"),
		ResponseCode:    mh.Str("response.code"),
		SenderReference: info.SenderReference,
		BundleID:        info.BundleID,
		MessageHeaderID: info.MessageHeaderID,
		SourceEndpoint:  info.SourceEndpoint,
		SenderODSCode:   info.SenderODSCode,
		Timestamp:       info.Timestamp,
	}

	outcomes := ackOutcomes(root, mh, info.entries)
	code, display := "", ""
	for _, oo := range outcomes {
		for _, is := range oo.All("issue") {
			if d := is.Str("diagnostics"); d != "" {
				ack.Diagnostics = append(ack.Diagnostics, d)
			}
			if code != "" {
				continue
			}
			for _, c := range is.All("details") {
				for _, cd := range c.All("coding") {
					if strings.TrimSpace(cd.Str("system")) == SystemResponseCodes && isResponseCode(cd.Str("code")) {
						code, display = strings.TrimSpace(cd.Str("code")), cd.Str("display")
						break
					}
				}
			}
		}
	}
	if code == "" {
		code, display = anyResponseCoding(root)
	}
	if code == "" {
		return nil, errors.New("itk: parse ack: no ITK3 response code found")
	}
	ack.Code = code
	ack.Kind = AckInfrastructure
	if IsBusinessCode(code) {
		ack.Kind = AckBusiness
	}
	if rc, ok := LookupResponseCode(code); ok {
		ack.Positive, ack.Display = rc.Positive, rc.Display
	} else {
		// Unknown code: trust the header's response code.
		ack.Positive, ack.Display = ack.ResponseCode == "ok", display
	}
	detach(&ack.Code, &ack.Display, &ack.ResponseCode, &ack.RespondsTo, &ack.SenderReference,
		&ack.BundleID, &ack.MessageHeaderID, &ack.SourceEndpoint, &ack.SenderODSCode)
	for i := range ack.Diagnostics {
		ack.Diagnostics[i] = strings.Clone(ack.Diagnostics[i])
	}
	if ack.ResponseCode == "" {
		ack.ResponseCode = "fatal-error"
		if ack.Positive {
			ack.ResponseCode = "ok"
		}
	}
	return ack, nil
}

func isResponseCode(s string) bool {
	s = strings.TrimSpace(s)
	if len(s) != 5 {
		return false
	}
	for i := 0; i < 5; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ackOutcomes finds the OperationOutcome(s): the one response.details
// references first, then any in the bundle.
func ackOutcomes(root, mh *fhir.Node, entries map[string]*fhir.Node) []*fhir.Node {
	var out []*fhir.Node
	if res := entries[mh.Str("response.details.reference")]; res != nil && res.Name == "OperationOutcome" {
		out = append(out, res)
	}
	var walk func(n *fhir.Node, depth int)
	walk = func(n *fhir.Node, depth int) {
		if depth > fhir.DefaultMaxDepth {
			return
		}
		if n.Name == "OperationOutcome" && (len(out) == 0 || out[0] != n) {
			out = append(out, n)
		}
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	return out
}

// anyResponseCoding falls back to the first coding anywhere whose code is
// five digits (some systems omit or misspell the code system).
func anyResponseCoding(root *fhir.Node) (string, string) {
	var code, display string
	var walk func(n *fhir.Node, depth int) bool
	walk = func(n *fhir.Node, depth int) bool {
		if depth > fhir.DefaultMaxDepth {
			return false
		}
		if n.Name == "coding" || n.Name == "valueCoding" {
			if c := n.Str("code"); isResponseCode(c) {
				code, display = strings.TrimSpace(c), n.Str("display")
				return true
			}
		}
		for _, c := range n.Children {
			if walk(c, depth+1) {
				return true
			}
		}
		return false
	}
	walk(root, 0)
	return code, display
}

// BundleInfo is what identifies an ITK3 message without validating it.
type BundleInfo struct {
	Format           Format    `json:"format"`
	BundleID         string    `json:"bundleId,omitempty"`
	BundleIdentifier string    `json:"bundleIdentifier,omitempty"`
	MessageHeaderID  string    `json:"messageHeaderId,omitempty"`
	Event            string    `json:"event,omitempty"` // e.g. ITK007C, ITK008M
	SenderReference  string    `json:"senderReference,omitempty"`
	SourceEndpoint   string    `json:"sourceEndpoint,omitempty"`
	SenderODSCode    string    `json:"senderOdsCode,omitempty"`
	Timestamp        time.Time `json:"timestamp"`

	header  *fhir.Node
	entries map[string]*fhir.Node
}

// ExtractBundleInfo reads the identifiers of any ITK3 message leniently
// (for example to answer 10009/20006 with the right RespondsTo and
// SenderReference when Validate fails). It contains no patient data.
func ExtractBundleInfo(data []byte) (*BundleInfo, error) {
	f := DetectFormat(data)
	if f == "" {
		return nil, errors.New("itk: bundle info: neither XML nor JSON")
	}
	root, err := fhir.Parse(data, fhir.Format(f), fhir.DefaultMaxDepth)
	if err != nil {
		return nil, fmt.Errorf("itk: bundle info: %w", err)
	}
	info := bundleInfo(root)
	info.Format = f
	detach(&info.BundleID, &info.BundleIdentifier, &info.MessageHeaderID, &info.Event,
		&info.SenderReference, &info.SourceEndpoint, &info.SenderODSCode)
	info.header, info.entries = nil, nil
	return &info, nil
}

func bundleInfo(root *fhir.Node) BundleInfo {
	var info BundleInfo
	if root.Name != "Bundle" {
		return info
	}
	info.BundleID = root.Str("id")
	info.BundleIdentifier = root.Str("identifier.value")
	all := root.All("entry")
	info.entries = indexEntries(all)
	var mh *fhir.Node
	for _, e := range all {
		if res := e.Child("resource").Resource(); res != nil && res.Name == "MessageHeader" {
			mh = res
			break
		}
	}
	if mh == nil {
		return info
	}
	info.header = mh
	info.MessageHeaderID = mh.Str("id")
	info.Event = strings.TrimSpace(mh.Str("event.code"))
	info.SourceEndpoint = mh.Str("source.endpoint")
	if ts := mh.Str("timestamp"); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			info.Timestamp = t
		}
	}
	for _, e := range mh.All("extension") {
		if e.Str("url") != ExtMessageHandling {
			continue
		}
		for _, k := range e.All("extension") {
			if k.Str("url") == "SenderReference" {
				if s, _ := k.Choice("value"); s != nil {
					info.SenderReference = s.Value
				}
			}
		}
	}
	if org := info.entries[mh.Str("sender.reference")]; org != nil {
		info.SenderODSCode = identifierValue(org, SystemODSCode)
	}
	return info
}

// detach copies strings that may alias the parsed input.
func detach(ps ...*string) {
	for _, p := range ps {
		*p = strings.Clone(*p)
	}
}
