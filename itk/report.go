package itk

import (
	"net/http"
	"strings"
	"time"
)

// meshReportTimestampLayouts are the forms of mex-StatusTimestamp seen in
// MESH (yyyyMMddHHmmss) plus lenient fallbacks; the time is UTC.
var meshReportTimestampLayouts = []string{"20060102150405", "20060102150405.000", "2006-01-02T15:04:05Z07:00", "2006-01-02 15:04:05"}

// ParseMeshReport reads a MESH error REPORT from the headers of an inbox
// message (mex-MessageType: REPORT). It returns false for any other message.
// An unparseable timestamp leaves Timestamp zero rather than failing: the
// report's status code is what matters.
func ParseMeshReport(h http.Header) (*MeshReport, bool) {
	if !strings.EqualFold(strings.TrimSpace(h.Get("Mex-MessageType")), "REPORT") {
		return nil, false
	}
	get := func(name string) string { return strings.TrimSpace(h.Get(name)) }
	r := &MeshReport{
		MessageID:       get("Mex-MessageID"),
		LinkedMessageID: get("Mex-LinkedMsgID"),
		StatusCode:      get("Mex-StatusCode"),
		StatusEvent:     get("Mex-StatusEvent"),
		StatusSuccess:   get("Mex-StatusSuccess"),
		Description:     get("Mex-StatusDescription"),
		WorkflowID:      get("Mex-WorkflowID"),
		LocalID:         get("Mex-LocalID"),
		Timestamp:       parseMeshTimestamp(get("Mex-StatusTimestamp")),
	}
	return r, true
}

func parseMeshTimestamp(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	for _, layout := range meshReportTimestampLayouts {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
