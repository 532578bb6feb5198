package e2e

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/meshgateway/gateway/auth"
	"github.com/meshgateway/gateway/itk"
)

// Every bad input gets a clear 4xx: application/problem+json on /v1, a FHIR
// OperationOutcome on /FHIR, never echoing patient data.
func TestBadInputs(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true, maxBody: 64 << 10})
	valid, _ := json.Marshal(request(smith, "X26ABC1"))
	big := make([]byte, 70<<10)
	for i := range big {
		big[i] = 'a'
	}
	badNHS := request(smith, "X26ABC1")
	badNHS["patient"].(map[string]any)["nhsNumber"] = "9000000008" // fails Modulus 11
	badNHSBody, _ := json.Marshal(badNHS)
	noSenderName := request(smith, "X26ABC1")
	delete(noSenderName["sender"].(map[string]any), "name")
	noSenderNameBody, _ := json.Marshal(noSenderName)
	noDocs := request(smith, "X26ABC1")
	noDocs["documents"] = []any{}
	noDocsBody, _ := json.Marshal(noDocs)
	otherMailbox, _ := json.Marshal(request(smith, "X26ABC2"))
	otherODS := request(smith, "X26ABC1")
	otherODS["sender"].(map[string]any)["odsCode"] = "Y99"
	otherODSBody, _ := json.Marshal(otherODS)
	metaOnly, metaCT := multipartBody(t, request(smith, "X26ABC1"), nil)
	fileFirst := []byte("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF\r\n--B--\r\n")
	metaNoData := request(smith, "X26ABC1")
	delete(metaNoData["documents"].([]any)[0].(map[string]any), "data")
	metaJSON, _ := json.Marshal(metaNoData)
	metaPart := "--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n" + string(metaJSON) + "\r\n"
	filePart := "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\nContent-Type: application/pdf\r\n\r\n"
	extraPart := []byte(metaPart + filePart + "%PDF-1.4\r\n--B\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--B--\r\n")
	emptyFile := []byte(metaPart + filePart + "\r\n--B--\r\n")
	truncated := []byte(metaPart + filePart + "%PDF-1.4 and then the connection")
	// Faults right next to patient data: a decoder that quotes the input
	// around the fault would echo them (into the response and the logs).
	syntaxNearPatient := []byte(`{"patient":{"nhsNumber":"` + smith.NHS + `","birthDate":"` + smith.BirthDate + `","name":{"family":"` + smith.Family + `"},}}`)
	typeNearPatient := []byte(`{"patient":{"nhsNumber":` + smith.NHS + `,"name":{"family":"` + smith.Family + `"}}}`)
	metaSyntaxNearPatient := []byte("--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n" +
		string(syntaxNearPatient) + "\r\n" + filePart + "%PDF-1.4\r\n--B--\r\n")
	// A part header without a colon: Go's multipart reader quotes the whole
	// line in its error, here a file name with the patient's name and number.
	brokenFileHeader := []byte(metaPart + "--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + smith.Family + "\r\n" +
		smith.NHS + ".pdf\"\r\n\r\n%PDF-1.4\r\n--B--\r\n")
	brokenMetaHeader := []byte("--B\r\nContent-Disposition: form-data; name=\"metadata\"; filename=\"" + smith.Family + "\r\n" +
		smith.NHS + ".json\"\r\n\r\n{}\r\n--B--\r\n")
	brokenExtraHeader := []byte(metaPart + filePart + "%PDF-1.4\r\n--B\r\nContent-Disposition: form-data; name=\"x\"; filename=\"" +
		smith.Family + "\r\n" + smith.NHS + "\"\r\n\r\nx\r\n--B--\r\n")
	fhirSyntaxNearPatient := []byte(`{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"Patient","identifier":[{"value":"` +
		smith.NHS + `"}],"birthDate":"` + smith.BirthDate + `","name":[{"family":"` + smith.Family + `"}],}}]}`)

	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        []byte
		bearer      string // "" = a valid token for app-a; "-" = none
		hdr         map[string]string
		status      int
		fhir        bool
		mention     string // text the error must contain
	}{
		{"unsupported media type", "POST", "/v1/documents", "text/plain", valid, "", nil, 415, false, "application/json"},
		{"malformed JSON", "POST", "/v1/documents", "application/json", []byte(`{"patient":`), "", nil, 400, false, "not a valid"},
		{"malformed JSON next to patient data", "POST", "/v1/documents", "application/json", syntaxNearPatient, "", nil, 400, false, "at byte"},
		{"wrong type next to patient data", "POST", "/v1/documents", "application/json", typeNearPatient, "", nil, 400, false, "nhsNumber"},
		{"malformed metadata next to patient data", "POST", "/v1/documents", "multipart/form-data; boundary=B", metaSyntaxNearPatient, "", nil, 400, false, "at byte"},
		{"multipart file header broken around patient data", "POST", "/v1/documents", "multipart/form-data; boundary=B", brokenFileHeader, "", nil, 400, false, "file"},
		{"multipart metadata header broken around patient data", "POST", "/v1/documents", "multipart/form-data; boundary=B", brokenMetaHeader, "", nil, 400, false, "metadata"},
		{"multipart extra part header broken around patient data", "POST", "/v1/documents", "multipart/form-data; boundary=B", brokenExtraHeader, "", nil, 400, false, "ended early or had extra parts"},
		{"unknown path with patient data", "GET", "/v1/patients/" + smith.NHS, "", nil, "", nil, 404, false, "route"},
		{"FHIR malformed next to patient data", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", fhirSyntaxNearPatient, "", nil, 400, true, ""},
		{"unknown field", "POST", "/v1/documents", "application/json", []byte(`{"patient":{},"colour":"blue"}`), "", nil, 400, false, "colour"},
		{"trailing data", "POST", "/v1/documents", "application/json", append(append([]byte{}, valid...), []byte(`{}`)...), "", nil, 400, false, "after the JSON"},
		{"too large", "POST", "/v1/documents", "application/json", big, "", nil, 413, false, "limit"},
		{"invalid NHS number", "POST", "/v1/documents", "application/json", badNHSBody, "", nil, 422, false, "patient.nhsNumber"},
		{"no documents", "POST", "/v1/documents", "application/json", noDocsBody, "", nil, 422, false, "documents"},
		{"sending organisation without a name", "POST", "/v1/documents", "application/json", noSenderNameBody, "", nil, 422, false, "sender.name"},
		{"other client's mailbox", "POST", "/v1/documents", "application/json", otherMailbox, "", nil, 403, false, "X26ABC2"},
		{"ODS code not registered", "POST", "/v1/documents", "application/json", otherODSBody, "", nil, 403, false, "Y99"},
		{"bad idempotency key", "POST", "/v1/documents", "application/json", valid, "", map[string]string{"Idempotency-Key": "has space"}, 400, false, "Idempotency-Key"},
		{"multipart without file", "POST", "/v1/documents", metaCT, metaOnly, "", nil, 400, false, "file"},
		{"multipart file first", "POST", "/v1/documents", "multipart/form-data; boundary=B", fileFirst, "", nil, 400, false, "metadata"},
		{"multipart without boundary", "POST", "/v1/documents", "multipart/form-data", fileFirst, "", nil, 400, false, "boundary"},
		{"multipart extra part", "POST", "/v1/documents", "multipart/form-data; boundary=B", extraPart, "", nil, 400, false, "ended early or had extra parts"},
		{"multipart empty file", "POST", "/v1/documents", "multipart/form-data; boundary=B", emptyFile, "", nil, 422, false, "empty"},
		{"multipart cut short", "POST", "/v1/documents", "multipart/form-data; boundary=B", truncated, "", nil, 400, false, "ended early"},
		{"no token", "POST", "/v1/documents", "application/json", valid, "-", nil, 401, false, "Authorization"},
		{"unknown message", "GET", "/v1/messages/" + uuid.NewString(), "", nil, "", nil, 404, false, "not found"},
		{"bad state filter", "GET", "/v1/messages?state=lost", "", nil, "", nil, 400, false, "state"},
		{"bad since", "GET", "/v1/messages?since=yesterday", "", nil, "", nil, 400, false, "RFC 3339"},
		{"bad cursor", "GET", "/v1/messages?cursor=bogus", "", nil, "", nil, 400, false, "cursor"},
		{"unknown route", "GET", "/v1/nothing", "", nil, "", nil, 404, false, "route"},
		{"FHIR unsupported media type", "POST", "/FHIR/STU3/$process-message", "text/plain", valid, "", nil, 415, true, "fhir+json"},
		{"FHIR empty body", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", nil, "", nil, 400, true, "Bundle"},
		{"FHIR unreadable", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", []byte("{not json"), "", nil, 400, true, ""},
		{"FHIR not a message bundle", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", []byte(`{"resourceType":"Bundle","type":"collection"}`), "", nil, 422, true, "Bundle.type"},
		{"FHIR too large", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", big, "", nil, 413, true, "limit"},
		{"FHIR no token", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", valid, "-", nil, 401, true, "Authorization"},
		{"FHIR synchronous processing asked for", "POST", "/FHIR/STU3/$process-message?async=false", "application/fhir+json", valid, "", nil, 422, true, "asynchronously"},
		{"FHIR async not a boolean", "POST", "/FHIR/STU3/$process-message?async=maybe", "application/fhir+json", valid, "", nil, 400, true, "async must be"},
		{"FHIR Parameters without content", "POST", "/FHIR/STU3/$process-message", "application/fhir+json", []byte(`{"resourceType":"Parameters","parameter":[{"name":"other"}]}`), "", nil, 400, true, "content"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bearer := tc.bearer
			switch bearer {
			case "":
				bearer = e.token(clientA)
			case "-":
				bearer = ""
			}
			r := e.do(tc.method, tc.path, tc.contentType, bearer, tc.body, tc.hdr)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			ct := r.Header.Get("Content-Type")
			if tc.fhir {
				var oo struct {
					ResourceType string
					Issue        []struct{ Severity, Code, Diagnostics string }
				}
				r.json(t, &oo)
				assertSTU3(t, r.Body)
				if !strings.HasPrefix(ct, "application/fhir+json") || oo.ResourceType != "OperationOutcome" || len(oo.Issue) == 0 {
					t.Fatalf("want an OperationOutcome, got %s %s", ct, r.Body)
				}
			} else {
				var p struct {
					Title  string
					Status int
				}
				r.json(t, &p)
				if !strings.HasPrefix(ct, "application/problem+json") || p.Status != tc.status || p.Title == "" {
					t.Fatalf("want problem+json, got %s %s", ct, r.Body)
				}
			}
			if tc.mention != "" && !strings.Contains(string(r.Body), tc.mention) {
				t.Fatalf("body does not mention %q: %s", tc.mention, r.Body)
			}
			for _, pid := range []string{smith.NHS, smith.Family, smith.BirthDate, "9000000008"} {
				if strings.Contains(string(r.Body), pid) {
					t.Fatalf("error body echoes patient data %q: %s", pid, r.Body)
				}
			}
		})
	}
}

// Every authentication failure is refused with the NHS platform's wording.
func TestAuthFailures(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	valid, _ := json.Marshal(request(smith, "X26ABC1"))
	now := time.Now()
	claims := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": clientA, "sub": clientA, "aud": audience, "jti": uuid.NewString(), "exp": now.Add(4 * time.Minute).Unix()}
		if mut != nil {
			mut(c)
		}
		return c
	}
	sign := func(method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		if kid != "" {
			tok.Header["kid"] = kid
		}
		s, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: mustPKIX(t, &e.keyA.PublicKey)})
	replayed := sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(nil))
	if r := e.do("POST", "/v1/documents", "application/json", replayed, valid, nil); r.Status != 202 {
		t.Fatalf("first use of a token: %d %s", r.Status, r.Body)
	}
	otherKey, _, err := auth.GenerateDemoKey()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		token  string
		status int
		want   string
	}{
		{"expired", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), 400, auth.DescExpired},
		{"exp too far ahead", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(30 * time.Minute).Unix() })), 400, auth.DescExpTooFar},
		{"wrong aud", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere" })), 401, auth.DescInvalidAud},
		{"unknown kid", sign(jwt.SigningMethodRS512, e.keyA, "nope", claims(nil)), 401, auth.DescUnknownKid},
		{"missing kid", sign(jwt.SigningMethodRS512, e.keyA, "", claims(nil)), 400, auth.DescMissingKid},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kidA, claims(nil)), 400, auth.DescInvalidAlgPrefix},
		{"HS256 with the public key", sign(jwt.SigningMethodHS256, pubPEM, kidA, claims(nil)), 400, auth.DescInvalidAlgPrefix},
		{"signed by another key", sign(jwt.SigningMethodRS512, otherKey, kidA, claims(nil)), 401, auth.DescBadSignature},
		{"iss not sub", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { c["sub"] = clientB })), 400, "'iss'/'sub'"},
		{"unknown client", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { c["iss"], c["sub"] = "stranger", "stranger" })), 401, auth.DescInvalidIssSub},
		{"missing jti", sign(jwt.SigningMethodRS512, e.keyA, kidA, claims(func(c jwt.MapClaims) { delete(c, "jti") })), 400, auth.DescMissingJti},
		{"replayed jti", replayed, 400, auth.DescReplayedJti},
		{"malformed", "not.a.jwt", 400, auth.DescMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/documents", "/FHIR/STU3/$process-message"} {
				ct := "application/json"
				if strings.HasPrefix(path, "/FHIR") {
					ct = "application/fhir+json"
				}
				r := e.do("POST", path, ct, tc.token, valid, nil)
				if r.Status != tc.status || !strings.Contains(string(r.Body), tc.want) {
					t.Fatalf("%s: status %d body %s; want %d mentioning %q", path, r.Status, r.Body, tc.status, tc.want)
				}
				if ct == "application/fhir+json" { // the NHS text is the whole diagnostics, nothing before it
					var oo itk.OperationOutcome
					r.json(t, &oo)
					if len(oo.Issue) != 1 || !strings.HasPrefix(oo.Issue[0].Diagnostics, strings.SplitN(tc.want, "'", 2)[0]) ||
						!strings.Contains(oo.Issue[0].Diagnostics, tc.want) {
						t.Fatalf("diagnostics %+v, want the NHS text %q alone", oo.Issue, tc.want)
					}
				}
			}
		})
	}

	t.Run("other client's message", func(t *testing.T) {
		id := e.accepted(clientA, request(smith, "X26ABC1"))
		if r := e.do("GET", "/v1/messages/"+id, "", e.token(clientB), nil, nil); r.Status != 404 {
			t.Fatalf("client B reading A's message: %d %s", r.Status, r.Body)
		}
		r := e.do("GET", "/v1/messages", "", e.token(clientB), nil, nil)
		if r.Status != 200 || strings.Contains(string(r.Body), id) {
			t.Fatalf("client B's list shows A's message: %d %s", r.Status, r.Body)
		}
		if r := e.do("GET", "/v1/messages/"+id, "", e.token(clientA), nil, nil); r.Status != 200 {
			t.Fatalf("owner reading its message: %d", r.Status)
		}
	})
	t.Run("other client's mailbox", func(t *testing.T) {
		body, _ := json.Marshal(request(smith, "X26ABC1"))
		if r := e.do("POST", "/v1/documents", "application/json", e.token(clientB), body, nil); r.Status != 403 {
			t.Fatalf("client B sending as X26ABC1: %d %s", r.Status, r.Body)
		}
	})
}

// A store outage is a 503 and nothing is accepted.
func TestStoreUnavailable(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	if err := e.apps[0].Redis().Do(t.Context(), "SHUTDOWN", "NOSAVE").Err(); err == nil {
		t.Log("redis shut down")
	}
	for _, path := range []string{"/v1/documents", "/FHIR/STU3/$process-message"} {
		body, _ := json.Marshal(request(smith, "X26ABC1"))
		ct := "application/json"
		if strings.HasPrefix(path, "/FHIR") {
			ct = "application/fhir+json"
		}
		r := e.do("POST", path, ct, e.token(clientA), body, nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("%s with Redis down: %d %s", path, r.Status, r.Body)
		}
	}
	if r := e.do("GET", "/readyz", "", "", nil, nil); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("readyz with Redis down: %d", r.Status)
	}
}

func mustPKIX(t *testing.T, pub *rsa.PublicKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A metadata part over its own 1 MiB bound (within the body limit) is
// refused as too large, not read cut short and reported as malformed JSON.
func TestMultipartMetadataTooLarge(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	body := []byte("--B\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{\"x\":\"" +
		strings.Repeat("a", 1<<20) + "\"}\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.4\r\n--B--\r\n")
	r := e.do("POST", "/v1/documents", "multipart/form-data; boundary=B", e.token(clientA), body, nil)
	if r.Status != 413 || !strings.Contains(string(r.Body), "metadata_too_large") || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("status %d %s: %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
}
