package stack

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"

	"github.com/meshgateway/gateway/registry"
)

func TestPDFLike(t *testing.T) {
	for _, size := range []int64{10, 200, 100 * 1024, 3<<20 + 7} {
		n, err := io.Copy(io.Discard, PDFLike(size, 1))
		if err != nil || n != size {
			t.Fatalf("PDFLike(%d) gave %d bytes, err %v", size, n, err)
		}
	}
	a, b := PDFBytes(4096, 3), PDFBytes(4096, 3)
	if !bytes.Equal(a, b) || !bytes.HasPrefix(a, []byte("%PDF-1.7\n")) || !bytes.HasSuffix(a, []byte("%%EOF\n")) {
		t.Fatal("PDFLike is not deterministic or not PDF-shaped")
	}
	if bytes.Equal(a, PDFBytes(4096, 4)) {
		t.Fatal("different seeds gave the same bytes")
	}
}

func TestBundleIdentifier(t *testing.T) {
	tests := []struct {
		name, payload, want string
		wantErr             bool
	}{
		{"xml", `<?xml version="1.0"?><Bundle xmlns="http://hl7.org/fhir"><id value="b1"/><identifier><system value="https://tools.ietf.org/html/rfc4122"/><value value="0f6c"/></identifier><entry><resource><MessageHeader><identifier><value value="inner"/></identifier></MessageHeader></resource></entry></Bundle>`, "0f6c", false},
		{"xml nested identifier only", `<Bundle xmlns="http://hl7.org/fhir"><entry><identifier><value value="inner"/></identifier></entry></Bundle>`, "", true},
		{"json", `{"resourceType":"Bundle","identifier":{"system":"x","value":"abc"},"entry":[]}`, "abc", false},
		{"json other resource", `{"resourceType":"Patient","identifier":{"value":"abc"}}`, "", true},
		{"not a bundle", `<Patient/>`, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := BundleIdentifier([]byte(tc.payload))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRegistryYAMLLoads(t *testing.T) {
	c, err := NewCaller()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Parse([]byte(RegistryYAML("http://127.0.0.1:8700", c.JWKS)), os.Getenv)
	if err != nil {
		t.Fatalf("generated registry does not load: %v", err)
	}
	if reg.Audience != Audience || len(reg.Mailboxes) != 1 {
		t.Fatalf("registry %+v", reg)
	}
	if _, ok := reg.Client(ClientID); !ok {
		t.Fatalf("client %s missing", ClientID)
	}
	tok, err := c.Token()
	if err != nil || tok == "" {
		t.Fatalf("token: %q %v", tok, err)
	}
}

func TestProcCPU(t *testing.T) {
	self0, _, err := ProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until a clock tick is charged (bounded: a loaded machine may
	// schedule this test rarely).
	var self1, children time.Duration
	for start := time.Now(); time.Since(start) < 5*time.Second; {
		if self1, children, err = ProcCPU(os.Getpid()); err != nil || self1 > self0 {
			break
		}
	}
	if err != nil || self1 <= self0 || children < 0 {
		t.Fatalf("self %v -> %v, children %v, err %v", self0, self1, children, err)
	}
	main, err := ThreadCPU(os.Getpid(), os.Getpid())
	self2, _, err2 := ProcCPU(os.Getpid()) // read after: a thread never has more than its process
	if err != nil || err2 != nil || main < 0 || main > self2 {
		t.Fatalf("main thread %v (process %v), err %v %v", main, self2, err, err2)
	}
	if _, _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("no error for a missing pid")
	}
}
