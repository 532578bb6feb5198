package itk

import (
	"net/http"
	"testing"
	"time"
)

func TestParseMeshReport(t *testing.T) {
	h := http.Header{}
	// Lower-case names as a server might send them; Header.Get canonicalises.
	for k, v := range map[string]string{
		"mex-messagetype":       "REPORT",
		"mex-messageid":         "20261124192252123456_ABCDEF",
		"mex-linkedmsgid":       "D06DB6B67B6A4993B9D5373B18BA5DBE",
		"mex-statuscode":        "EPL-151",
		"mex-statusevent":       "SEND",
		"mex-statussuccess":     "ERROR",
		"mex-statusdescription": "No mailbox matched",
		"mex-workflowid":        "GPCONNECT_SEND_DOCUMENT",
		"mex-localid":           "RX1",
		"mex-statustimestamp":   "20261124192252",
	} {
		h.Set(k, v)
	}
	r, ok := ParseMeshReport(h)
	if !ok {
		t.Fatal("report not recognised")
	}
	want := MeshReport{
		MessageID: "20261124192252123456_ABCDEF", LinkedMessageID: "D06DB6B67B6A4993B9D5373B18BA5DBE",
		StatusCode: "EPL-151", StatusEvent: "SEND", StatusSuccess: "ERROR", Description: "No mailbox matched",
		WorkflowID: "GPCONNECT_SEND_DOCUMENT", LocalID: "RX1",
		Timestamp: time.Date(2026, 11, 24, 19, 22, 52, 0, time.UTC),
	}
	if *r != want {
		t.Fatalf("got %+v\nwant %+v", *r, want)
	}
}

func TestParseMeshReportLenient(t *testing.T) {
	for _, tt := range []struct {
		messageType, timestamp string
		ok                     bool
		want                   time.Time
	}{
		{"DATA", "20261124192252", false, time.Time{}},
		{"", "", false, time.Time{}},
		{"report", " 20261124192252 ", true, time.Date(2026, 11, 24, 19, 22, 52, 0, time.UTC)},
		{"REPORT", "2026-11-24T19:22:52Z", true, time.Date(2026, 11, 24, 19, 22, 52, 0, time.UTC)},
		{"REPORT", "not a time", true, time.Time{}},
		{"REPORT", "", true, time.Time{}},
	} {
		h := http.Header{}
		h.Set("Mex-MessageType", tt.messageType)
		h.Set("Mex-StatusTimestamp", tt.timestamp)
		h.Set("Mex-StatusCode", "14")
		r, ok := ParseMeshReport(h)
		if ok != tt.ok {
			t.Fatalf("%q: ok = %v", tt.messageType, ok)
		}
		if ok && (!r.Timestamp.Equal(tt.want) || r.StatusCode != "14") {
			t.Fatalf("%q: got %+v", tt.timestamp, r)
		}
	}
}
