package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testN is the modulus of the 2048-bit demo key in example.yaml.
const testN = "vPQml1iueoqBn0iwYiA7d3Azo4baw51pb2dCfniEV-OakIlg3vL67gSrjnGIAWkTlz2tD7TOkH40hlsYfRL7Eb8LA0VUZyxtlGk5yRZjaXrl1TBX6SgKQclOjmEaUfM5Sb1Dfj2-yvXUWJULmR0w1UGa9zPduyZ-MFsjAUQvnf8S7jb2RnCjb11vh7X-CSC6q7mmcripsDC_X6WAjmyHpxU4SSiNXVpM2dNfmywXfevnWaMPVzzMduZO_kKPQxwbCMpkQqgq5sjt2cihidIyMBiLsizmdGKv_Es3u3doQKUkY1eR0TBzdPk_Qhvp-X2RaFas3mNAKzVypAOnlxncjQ"

var testJWKS = `{"keys":[{"kty":"RSA","kid":"k1","e":"AQAB","n":"` + testN + `"}]}`

const testSecret = "whsec_91mnwR8jauKNpjfkfDTwtbEaUYVewoFk4syfSTl1G6Y="

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// doc builds a registry file; the client entry is completed by clientExtra
// (YAML lines indented by four spaces).
func doc(mailboxes, clientExtra string) string {
	return `audience: https://gw.test
mesh:
  url: https://mesh.test
  sharedKey: shared-key-value
mailboxes:
` + mailboxes + `
clients:
  - id: app
    mailboxes: [X26ABC1]
    odsCodes: [X26]
` + clientExtra
}

const oneMailbox = `  - id: X26ABC1
    password: mailbox-password-value
    odsCode: X26`

func jwksLine(j string) string { return "    jwks: '" + j + "'\n" }

func TestLoadExample(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "/etc/mesh/", dir+"/")
	for name, content := range map[string]string{
		"tls.crt": "cert", "tls.key": "key", "nhs-ca-bundle.pem": "ca",
		"secrets/X26ABC2.password": "file-password\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "gateway.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := Load(path, env(map[string]string{
		"MESH_SHARED_KEY": "the-shared-key", "MESH_PASSWORD_X26ABC1": "pw1", "DEMO_APP_WEBHOOK_SECRET": testSecret,
	}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if reg.Audience != "https://mesh-gateway.example.nhs.uk" {
		t.Errorf("Audience = %q", reg.Audience)
	}
	m1, ok := reg.Mailbox("x26abc1")
	if !ok {
		t.Fatal("mailbox X26ABC1 not found (case-insensitive)")
	}
	want1 := Mailbox{ID: "X26ABC1", Password: "pw1", ODSCode: "X26", URL: "https://msg.intspineservices.nhs.uk",
		SharedKey: "the-shared-key", ClientCert: dir + "/tls.crt", ClientKey: dir + "/tls.key", CACert: dir + "/nhs-ca-bundle.pem"}
	if *m1 != want1 {
		t.Errorf("X26ABC1 = %#v (password/shared key compared but redacted in output)", *m1)
	}
	m2, _ := reg.Mailbox("X26ABC2")
	if m2.Password != "file-password" || m2.ChunkSize != 10485760 || m2.MaxConcurrentSends != 2 || m2.URL != want1.URL {
		t.Errorf("X26ABC2 merge/passwordFile wrong: chunk=%d conc=%d url=%s pwOK=%v", m2.ChunkSize, m2.MaxConcurrentSends, m2.URL, m2.Password == "file-password")
	}
	demo, ok := reg.Client("demo-app")
	if !ok {
		t.Fatal("client demo-app not found")
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(demo.JWKS, &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != "demo-1" {
		t.Errorf("demo JWKS = %s (%v)", demo.JWKS, err)
	}
	if demo.Webhook == nil || demo.Webhook.Secret != testSecret || demo.Webhook.URL != "https://app.example/hooks/mesh" {
		t.Errorf("demo webhook = %v", demo.Webhook)
	}
	if !demo.MaySendAs("X26ABC1") || !demo.MaySendAs("x26abc1") || demo.MaySendAs("X26ABC2") || demo.MaySendAs("") {
		t.Error("demo MaySendAs wrong")
	}
	if !demo.MayUseODS("x26") || demo.MayUseODS("Y12") {
		t.Error("demo MayUseODS wrong")
	}
	partner, _ := reg.Client("partner-app")
	if partner.JWKSURL != "https://partner.example/.well-known/jwks.json" || partner.JWKS != nil ||
		strings.Join(partner.AllowedAlgorithms(), ",") != "ES256,RS512" || !partner.MaySendAs("X26ABC2") {
		t.Errorf("partner = %+v", partner)
	}
	if _, ok := reg.Client("Demo-App"); ok {
		t.Error("client ids must be case sensitive (JWT iss)")
	}
	if _, ok := reg.Client("nobody"); ok {
		t.Error("unknown client found")
	}
}

func TestParseReportsEachProblem(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		yaml  string
		env   map[string]string
		wants []string // substrings of the error; nil = must succeed
	}{
		{"valid", doc(oneMailbox, jwksLine(testJWKS)), nil, nil},
		{"duplicate mailbox", doc(oneMailbox+"\n"+strings.ReplaceAll(oneMailbox, "X26ABC1", "x26abc1"), jwksLine(testJWKS)), nil,
			[]string{"mailboxes[1]: duplicate id X26ABC1"}},
		{"duplicate client", doc(oneMailbox, jwksLine(testJWKS)+"  - id: app\n"+jwksLine(testJWKS)), nil,
			[]string{"clients[1]: duplicate id app"}},
		{"unknown algorithm", doc(oneMailbox, jwksLine(testJWKS)+"    algorithms: [RS256]\n"), nil,
			[]string{`algorithm "RS256" is not supported`}},
		{"HS256 refused", doc(oneMailbox, jwksLine(testJWKS)+"    algorithms: [RS512, HS256]\n"), nil,
			[]string{`algorithm "HS256" is never allowed`}},
		{"none refused", doc(oneMailbox, jwksLine(testJWKS)+"    algorithms: [none]\n"), nil,
			[]string{`algorithm "none" is never allowed`}},
		{"missing JWKS", doc(oneMailbox, ""), nil, []string{"a public key is required"}},
		{"two JWKS sources", doc(oneMailbox, jwksLine(testJWKS)+"    jwksUrl: https://x.test/jwks\n"), nil,
			[]string{"set only one of jwks, jwksFile or jwksUrl"}},
		{"jwksUrl must be https", doc(oneMailbox, "    jwksUrl: http://x.test/jwks\n"), nil, []string{"jwksUrl must be an absolute https URL"}},
		{"empty JWKS", doc(oneMailbox, jwksLine(`{"keys":[]}`)), nil, []string{"jwks has no keys"}},
		{"private key in JWKS", doc(oneMailbox, jwksLine(strings.Replace(testJWKS, `"e"`, `"d":"AQAB","e"`, 1))), nil,
			[]string{"private or symmetric key material"}},
		{"symmetric key in JWKS", doc(oneMailbox, jwksLine(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`)), nil,
			[]string{"private or symmetric key material"}},
		{"encryption key", doc(oneMailbox, jwksLine(strings.Replace(testJWKS, `"kid":"k1",`, `"kid":"k1","use":"enc",`, 1))), nil, []string{`use is "enc"`}},
		{"kid missing", doc(oneMailbox, jwksLine(strings.Replace(testJWKS, `"kid":"k1",`, "", 1))), nil, []string{"has no kid"}},
		{"EC key but RS512 only", doc(oneMailbox, jwksLine(`{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)), nil,
			[]string{"no key in jwks can verify the allowed algorithms"}},
		{"EC key with ES256 ok", doc(oneMailbox, "    algorithms: [ES256]\n"+jwksLine(`{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`)), nil, nil},
		{"webhook must be https", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'http://app.test/hook', secret: '"+testSecret+"'}\n"), nil,
			[]string{"webhook.url must use https"}},
		{"webhook private IP", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://10.1.2.3/hook', secret: '"+testSecret+"'}\n"), nil,
			[]string{"private, loopback or link-local"}},
		{"webhook localhost", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://localhost:8443/hook', secret: '"+testSecret+"'}\n"), nil,
			[]string{"must not point at localhost"}},
		{"webhook private allowed for dev", doc(oneMailbox, jwksLine(testJWKS)+"    allowPrivateWebhook: true\n    webhook: {url: 'http://127.0.0.1:9/hook', secret: '"+testSecret+"'}\n"), nil, nil},
		{"webhook secret prefix", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/hook', secret: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0'}\n"), nil,
			[]string{`webhook.secret must start with "whsec_"`}},
		{"webhook previous secret bad", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/hook', secret: '"+testSecret+"', previousSecret: 'c2VjcmV0'}\n"), nil,
			[]string{`webhook.previousSecret must start with "whsec_"`}},
		{"webhook previous secret", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/hook', secret: '"+testSecret+"', previousSecret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}\n"), nil, nil},
		{"webhook secret too short", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/hook', secret: 'whsec_c2VjcmV0'}\n"), nil,
			[]string{"must encode 24 to 64 bytes"}},
		{"webhook secret missing", doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/hook'}\n"), nil,
			[]string{"webhook.secret (or secretFile) is required"}},
		{"duplicate yaml key", doc(oneMailbox, jwksLine(testJWKS)+"    odsCodes: [X26]\n"), nil, []string{"mapping key \"odsCodes\" already defined"}},
		{"client mailbox unknown", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "mailboxes: [X26ABC1]", "mailboxes: [X26ABC1, Y99ZZZ9]", 1), nil,
			[]string{"mailbox Y99ZZZ9 is not configured"}},
		{"client mailbox from MESH_MAILBOX_ID", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "mailboxes: [X26ABC1]", "mailboxes: [X26ABC1, X26ENV1]", 1),
			map[string]string{"MESH_MAILBOX_ID": "x26env1"}, nil},
		{"missing password", doc("  - id: X26ABC1", jwksLine(testJWKS)), nil, []string{"password (or passwordFile) is required"}},
		{"missing shared key", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "  sharedKey: shared-key-value\n", "", 1), nil,
			[]string{"sharedKey (or sharedKeyFile) is required"}},
		{"mesh url http not loopback", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "https://mesh.test", "http://mesh.test", 1), nil,
			[]string{"url must use https"}},
		{"mesh url http loopback ok", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "https://mesh.test", "http://127.0.0.1:8700", 1), nil, nil},
		{"cert without key", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "  sharedKey:", "  clientCert: "+dir+"/missing.crt\n  sharedKey:", 1), nil,
			[]string{"clientCert and clientKey must be set together", "clientCert: cannot read"}},
		{"chunk size too small", doc(oneMailbox+"\n    chunkSize: 1000", jwksLine(testJWKS)), nil, []string{"chunkSize must be between"}},
		{"chunk size under 5 MiB", doc(oneMailbox+"\n    chunkSize: 5242879", jwksLine(testJWKS)), nil,
			[]string{"chunkSize must be between 5242880 and 99000000 bytes"}},
		{"chunk size 5 MiB ok", doc(oneMailbox+"\n    chunkSize: 5242880", jwksLine(testJWKS)), nil, nil},
		{"chunk size 99 MB ok", doc(oneMailbox+"\n    chunkSize: 99000000", jwksLine(testJWKS)), nil, nil},
		{"chunk size 100 MB gzips over MESH's limit", doc(oneMailbox+"\n    chunkSize: 100000000", jwksLine(testJWKS)), nil,
			[]string{"chunkSize must be between 5242880 and 99000000 bytes"}},
		{"mesh chunk size under 5 MiB", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "  sharedKey:", "  chunkSize: 2097152\n  sharedKey:", 1), nil,
			[]string{"chunkSize must be between 5242880 and 99000000 bytes"}},
		{"unknown field", doc(oneMailbox+"\n    passwd: x", jwksLine(testJWKS)), nil, []string{"field passwd not found"}},
		{"unset env var", doc("  - id: X26ABC1\n    password: ${NOPE_PASSWORD}", jwksLine(testJWKS)), nil,
			[]string{"environment variable NOPE_PASSWORD is not set"}},
		{"password and passwordFile", doc(oneMailbox+"\n    passwordFile: /x", jwksLine(testJWKS)), nil,
			[]string{"password: set password or passwordFile, not both"}},
		{"bad mailbox id", doc(strings.Replace(oneMailbox, "X26ABC1", "X26/../1", 1), jwksLine(testJWKS)), nil,
			[]string{"id must be 3-20 letters or digits"}},
		{"bad client id", strings.Replace(doc(oneMailbox, jwksLine(testJWKS)), "- id: app", "- id: 'app:{x}'", 1), nil,
			[]string{"id must be 1-128"}},
		{"empty file", "", nil, []string{"the file is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := Parse([]byte(tt.yaml), env(tt.env))
			if tt.wants == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if reg == nil || len(reg.Clients) == 0 {
					t.Fatal("no clients parsed")
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tt.wants)
			}
			for _, w := range tt.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// The outbox sends each mailbox's messages in its own chunk size: the
// mailbox's chunkSize, else mesh.chunkSize, else (absent) MESH_CHUNK_SIZE.
func TestChunkSizes(t *testing.T) {
	y := strings.Replace(doc(oneMailbox+"\n    chunkSize: 6291456\n  - id: x26abc2\n    password: pw2\n    odsCode: X26"+
		"\n  - id: X26ABC3\n    password: pw3\n    odsCode: X26", jwksLine(testJWKS)), "  sharedKey:", "  chunkSize: 8388608\n  sharedKey:", 1)
	reg, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := reg.ChunkSizes()
	want := map[string]int64{"X26ABC1": 6291456, "X26ABC2": 8388608, "X26ABC3": 8388608}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ChunkSizes with mesh default = %v, want %v", got, want)
	}
	reg, err = Parse([]byte(doc(oneMailbox+"\n  - id: X26ABC2\n    password: pw2\n    odsCode: X26\n    chunkSize: 6291456",
		jwksLine(testJWKS))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.ChunkSizes(); fmt.Sprint(got) != fmt.Sprint(map[string]int64{"X26ABC2": 6291456}) {
		t.Errorf("ChunkSizes = %v, want only X26ABC2", got)
	}
}

func TestSendLimits(t *testing.T) {
	y := strings.Replace(doc(oneMailbox+"\n    maxConcurrentSends: 1\n  - id: x26abc2\n    password: pw2\n    odsCode: X26"+
		"\n  - id: X26ABC3\n    password: pw3\n    odsCode: X26\n    maxConcurrentSends: 6", jwksLine(testJWKS)), "  sharedKey:", "  maxConcurrentSends: 3\n  sharedKey:", 1)
	reg, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"X26ABC1": 1, "X26ABC2": 3, "X26ABC3": 6}
	if got := reg.SendLimits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SendLimits with a mesh default = %v, want %v", got, want)
	}
	reg, err = Parse([]byte(doc(oneMailbox, jwksLine(testJWKS))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.SendLimits(); len(got) != 0 {
		t.Errorf("SendLimits without any = %v, want none", got)
	}
}

func TestParseReportsAllProblemsWithoutSecrets(t *testing.T) {
	y := doc("  - id: X26ABC1\n    password: S3cr3t-Mailbox-Pw\n  - id: X26ABC1\n    password: S3cr3t-Mailbox-Pw",
		jwksLine(testJWKS)+"    algorithms: [HS256]\n    webhook: {url: 'http://app.test', secret: 'whsec_TooShortSecretValue'}\n")
	y = strings.Replace(y, "mailboxes: [X26ABC1]", "mailboxes: [X26ABC1, NOPE123]", 1)
	_, err := Parse([]byte(y), nil)
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("err = %v, want *ValidationError", err)
	}
	if len(verr.Problems) < 5 { // duplicate, HS256, unknown mailbox, webhook url, webhook secret
		t.Errorf("got %d problems, want >= 5:\n%v", len(verr.Problems), err)
	}
	for _, secret := range []string{"S3cr3t-Mailbox-Pw", "TooShortSecretValue", "shared-key-value"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks secret %q: %v", secret, err)
		}
	}
}

func TestSecretsRedactedWhenPrinted(t *testing.T) {
	reg, err := Parse([]byte(doc(oneMailbox, jwksLine(testJWKS)+"    webhook: {url: 'https://app.test/h', secret: '"+testSecret+"'}\n")), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprintf("%v", reg), fmt.Sprintf("%+v", *reg), fmt.Sprintf("%#v", reg.Mailboxes[0]), fmt.Sprint(*reg.Clients[0].Webhook)} {
		for _, secret := range []string{"mailbox-password-value", "shared-key-value", testSecret} {
			if strings.Contains(s, secret) {
				t.Errorf("printed form leaks %q: %s", secret, s)
			}
		}
	}
}

func TestEnvExpansion(t *testing.T) {
	y := doc("  - id: ${MBX}\n    password: 'pre-${PW}-$literal'\n    odsCode: X26", jwksLine(testJWKS))
	y = strings.Replace(y, "https://gw.test", "${AUD}", 1)
	reg, err := Parse([]byte(y), env(map[string]string{"MBX": "X26ABC1", "PW": "secret", "AUD": "https://aud.test"}))
	if err != nil {
		t.Fatal(err)
	}
	if m := reg.Mailboxes[0]; m.ID != "X26ABC1" || m.Password != "pre-secret-$literal" || reg.Audience != "https://aud.test" {
		t.Errorf("expansion wrong: id=%s audience=%s passwordOK=%v", m.ID, reg.Audience, m.Password == "pre-secret-$literal")
	}
}

func TestFileSecretsRelativeToConfig(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"pw.txt": "file-pw\r\n", "shared.txt": "file-shared\n", "hook.txt": testSecret + "\n", "keys.json": testJWKS,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	y := `audience: https://gw.test
mesh:
  url: https://mesh.test
  sharedKeyFile: shared.txt
mailboxes:
  - id: X26ABC1
    passwordFile: ${PW_DIR}/pw.txt
clients:
  - id: app
    jwksFile: keys.json
    mailboxes: [X26ABC1]
    webhook:
      url: https://app.test/hook
      secretFile: hook.txt
`
	path := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	reg, err := Load(path, env(map[string]string{"PW_DIR": dir}))
	if err != nil {
		t.Fatal(err)
	}
	m := reg.Mailboxes[0]
	c := reg.Clients[0]
	if m.Password != "file-pw" || m.SharedKey != "file-shared" || c.Webhook.Secret != testSecret || string(c.JWKS) != testJWKS ||
		c.JWKSFile != filepath.Join(dir, "keys.json") {
		t.Errorf("file secrets not resolved: pw=%v shared=%v hook=%v jwks=%s file=%s",
			m.Password == "file-pw", m.SharedKey == "file-shared", c.Webhook.Secret == testSecret, c.JWKS, c.JWKSFile)
	}

	if err := os.WriteFile(path, []byte(strings.Replace(y, "keys.json", "absent.json", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, env(map[string]string{"PW_DIR": dir})); err == nil || !strings.Contains(err.Error(), "jwksFile: cannot read") {
		t.Errorf("missing jwksFile: err = %v", err)
	}
}

func TestApplyMeshEnv(t *testing.T) {
	base := func(t *testing.T) *Registry {
		reg, err := Parse([]byte(doc(oneMailbox, jwksLine(testJWKS))), nil)
		if err != nil {
			t.Fatal(err)
		}
		return reg
	}
	t.Run("no variables is a no-op", func(t *testing.T) {
		reg := base(t)
		if err := reg.ApplyMeshEnv(env(nil)); err != nil || len(reg.Mailboxes) != 1 {
			t.Fatalf("err=%v mailboxes=%d", err, len(reg.Mailboxes))
		}
	})
	t.Run("overrides existing mailbox", func(t *testing.T) {
		reg := base(t)
		err := reg.ApplyMeshEnv(env(map[string]string{"MESH_MAILBOX_ID": "x26abc1", "MESH_MAILBOX_PASSWORD": "new-pw", "MESH_URL": "https://127.0.0.1:8700"}))
		if err != nil {
			t.Fatal(err)
		}
		m, _ := reg.Mailbox("X26ABC1")
		if len(reg.Mailboxes) != 1 || m.Password != "new-pw" || m.URL != "https://127.0.0.1:8700" || m.SharedKey != "shared-key-value" || m.ODSCode != "X26" {
			t.Errorf("override wrong: %v", m)
		}
	})
	t.Run("adds a mailbox from defaults", func(t *testing.T) {
		reg := base(t)
		err := reg.ApplyMeshEnv(env(map[string]string{"MESH_MAILBOX_ID": "X26NEW1", "MESH_MAILBOX_PASSWORD": "pw2", "MESH_SHARED_KEY": "k2"}))
		if err != nil {
			t.Fatal(err)
		}
		m, ok := reg.Mailbox("X26NEW1")
		if !ok || len(reg.Mailboxes) != 2 || m.URL != "https://mesh.test" || m.SharedKey != "k2" || m.Password != "pw2" {
			t.Errorf("added mailbox wrong: ok=%v %v", ok, m)
		}
	})
	t.Run("empty registry", func(t *testing.T) {
		reg := &Registry{}
		err := reg.ApplyMeshEnv(env(map[string]string{"MESH_MAILBOX_ID": "X26ABC1", "MESH_MAILBOX_PASSWORD": "p", "MESH_SHARED_KEY": "k", "MESH_URL": "https://mesh.test"}))
		if _, ok := reg.Mailbox("X26ABC1"); err != nil || !ok {
			t.Errorf("err=%v found=%v", err, ok)
		}
	})
	t.Run("id required", func(t *testing.T) {
		if err := base(t).ApplyMeshEnv(env(map[string]string{"MESH_URL": "https://mesh.test"})); err == nil || !strings.Contains(err.Error(), "MESH_MAILBOX_ID is required") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("new mailbox needs a password", func(t *testing.T) {
		reg := base(t)
		err := reg.ApplyMeshEnv(env(map[string]string{"MESH_MAILBOX_ID": "X26NEW1"}))
		if err == nil || !strings.Contains(err.Error(), "password") || len(reg.Mailboxes) != 1 {
			t.Errorf("err = %v, mailboxes = %d", err, len(reg.Mailboxes))
		}
	})
}

// During a rotation the current secret signs first, then the previous one;
// neither is ever printed.
func TestWebhookSecrets(t *testing.T) {
	prev := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	w := Webhook{URL: "https://app.test/hook", Secret: testSecret}
	if got := w.Secrets(); len(got) != 1 || got[0] != testSecret {
		t.Fatalf("Secrets() = %d secrets", len(got))
	}
	w.PreviousSecret = prev
	if got := w.Secrets(); len(got) != 2 || got[0] != testSecret || got[1] != prev {
		t.Fatal("Secrets() during a rotation is not [current, previous]")
	}
	for _, s := range []string{w.String(), fmt.Sprintf("%#v", w), fmt.Sprintf("%v", w)} {
		if strings.Contains(s, testSecret) || strings.Contains(s, prev) {
			t.Fatalf("a secret is printed: %s", s)
		}
	}
}
