package registry

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/MicahParks/jwkset"
	"gopkg.in/yaml.v3"
)

// Limits checked at load time.
const (
	MinChunkSize  int64 = 5 << 20    // 5 MiB, as config.MESH_CHUNK_SIZE: MESH wants every chunk but the last "greater than 5MB"
	MaxChunkSize  int64 = 99_000_000 // as meshbridge.MaxChunkSize: under MESH's 100 MB per request even after gzip's overhead
	minRSABits          = 2048
	maxSecretFile       = 1 << 20 // a secret or JWKS file larger than this is a mistake
)

var (
	envRef         = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	mailboxIDRe    = regexp.MustCompile(`^[A-Z0-9]{3,20}$`)
	odsCodeRe      = regexp.MustCompile(`^[A-Z0-9]{2,10}$`)
	clientIDRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	webhookPrefix  = "whsec_"
	errEmptyConfig = errors.New("registry: the file is empty")
)

// ValidationError lists every problem found in a registry file. Problems name
// the field and never contain secret values.
type ValidationError struct {
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("registry: %d problem(s):\n  - %s", len(e.Problems), strings.Join(e.Problems, "\n  - "))
}

// Load reads and validates the registry file. Relative *File paths and
// certificate paths are resolved against the file's directory.
func Load(path string, getenv func(string) string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("registry.Load: %w", err)
	}
	reg, err := parse(data, getenv, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("registry.Load %s: %w", path, err)
	}
	return reg, nil
}

// Parse validates registry YAML; relative paths are resolved against the working directory.
func Parse(data []byte, getenv func(string) string) (*Registry, error) {
	return parse(data, getenv, "")
}

// The raw* types mirror the file; they carry the *File variants that the
// public types do not.
type rawFile struct {
	Audience  string       `yaml:"audience"`
	Mesh      rawMesh      `yaml:"mesh"`
	Mailboxes []rawMailbox `yaml:"mailboxes"`
	Clients   []rawClient  `yaml:"clients"`
}

type rawMesh struct {
	URL                string `yaml:"url"`
	SharedKey          string `yaml:"sharedKey"`
	SharedKeyFile      string `yaml:"sharedKeyFile"`
	ClientCert         string `yaml:"clientCert"`
	ClientKey          string `yaml:"clientKey"`
	CACert             string `yaml:"caCert"`
	ChunkSize          int64  `yaml:"chunkSize"`
	MaxConcurrentSends int    `yaml:"maxConcurrentSends"`
}

type rawMailbox struct {
	ID                 string `yaml:"id"`
	Password           string `yaml:"password"`
	PasswordFile       string `yaml:"passwordFile"`
	ODSCode            string `yaml:"odsCode"`
	URL                string `yaml:"url"`
	SharedKey          string `yaml:"sharedKey"`
	SharedKeyFile      string `yaml:"sharedKeyFile"`
	ClientCert         string `yaml:"clientCert"`
	ClientKey          string `yaml:"clientKey"`
	CACert             string `yaml:"caCert"`
	ChunkSize          int64  `yaml:"chunkSize"`
	MaxConcurrentSends int    `yaml:"maxConcurrentSends"`
}

type rawClient struct {
	ID                  string      `yaml:"id"`
	Name                string      `yaml:"name"`
	JWKS                yaml.Node   `yaml:"jwks"` // a mapping, or a JSON string (e.g. "${DEMO_JWKS}")
	JWKSFile            string      `yaml:"jwksFile"`
	JWKSURL             string      `yaml:"jwksUrl"`
	Algorithms          []string    `yaml:"algorithms"`
	Mailboxes           []string    `yaml:"mailboxes"`
	ODSCodes            []string    `yaml:"odsCodes"`
	Webhook             *rawWebhook `yaml:"webhook"`
	AllowPrivateWebhook bool        `yaml:"allowPrivateWebhook"`
}

type rawWebhook struct {
	URL                string `yaml:"url"`
	Secret             string `yaml:"secret"`
	SecretFile         string `yaml:"secretFile"`
	PreviousSecret     string `yaml:"previousSecret"`
	PreviousSecretFile string `yaml:"previousSecretFile"`
}

// loader accumulates problems so one run reports all of them.
type loader struct {
	getenv   func(string) string
	baseDir  string
	problems []string
}

func (l *loader) addf(format string, args ...any) {
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

func parse(data []byte, getenv func(string) string, baseDir string) (*Registry, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var raw rawFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errEmptyConfig
		}
		return nil, fmt.Errorf("registry: yaml: %w", err)
	}
	l := &loader{getenv: getenv, baseDir: baseDir}
	reg := &Registry{Audience: l.expand("audience", raw.Audience)}
	reg.Mesh = l.meshDefaults(raw.Mesh)

	seenMailbox := map[string]bool{}
	for i, rm := range raw.Mailboxes {
		m := l.mailbox(i, rm, reg.Mesh)
		if m.ID != "" {
			if seenMailbox[m.ID] {
				l.addf("mailboxes[%d]: duplicate id %s", i, m.ID)
			}
			seenMailbox[m.ID] = true
		}
		reg.Mailboxes = append(reg.Mailboxes, m)
	}

	// A client may name the mailbox that ApplyMeshEnv will add from MESH_MAILBOX_ID.
	known := maps.Clone(seenMailbox)
	if id := strings.ToUpper(strings.TrimSpace(getenv("MESH_MAILBOX_ID"))); id != "" {
		known[id] = true
	}
	seenClient := map[string]bool{}
	for i, rc := range raw.Clients {
		c := l.client(i, rc, known)
		if c.ID != "" {
			if seenClient[c.ID] {
				l.addf("clients[%d]: duplicate id %s", i, c.ID)
			}
			seenClient[c.ID] = true
		}
		reg.Clients = append(reg.Clients, c)
	}
	if len(l.problems) > 0 {
		return nil, &ValidationError{Problems: l.problems}
	}
	reg.reindex()
	return reg, nil
}

// expand replaces ${NAME} with getenv(NAME). Only the braced form is
// recognised so a literal '$' in a value stays as written. An unset or empty
// variable is a problem (naming the variable, never a value).
func (l *loader) expand(field, s string) string {
	return envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v := l.getenv(name)
		if v == "" {
			l.addf("%s: environment variable %s is not set", field, name)
		}
		return v
	})
}

func (l *loader) expandAll(field string, list []string) []string {
	out := make([]string, 0, len(list))
	for i, s := range list {
		out = append(out, strings.TrimSpace(l.expand(fmt.Sprintf("%s[%d]", field, i), s)))
	}
	return out
}

func (l *loader) path(p string) string {
	if p == "" || filepath.IsAbs(p) || l.baseDir == "" {
		return p
	}
	return filepath.Join(l.baseDir, p)
}

// secret resolves an inline value or a *File variant (Kubernetes secret mount).
func (l *loader) secret(field, value, file string) string {
	value, file = l.expand(field, value), l.expand(field+"File", file)
	switch {
	case value != "" && file != "":
		l.addf("%s: set %s or %sFile, not both", field, path.Base(strings.ReplaceAll(field, ".", "/")), path.Base(strings.ReplaceAll(field, ".", "/")))
		return value // keep going so the same field is not also reported as missing
	case file != "":
		data, ok := l.readFile(field+"File", file)
		if !ok {
			return ""
		}
		v := strings.TrimRight(string(data), "\r\n")
		if v == "" {
			l.addf("%sFile: file is empty", field)
		}
		return v
	default:
		return value
	}
}

func (l *loader) readFile(field, file string) ([]byte, bool) {
	p := l.path(file)
	st, err := os.Stat(p)
	if err != nil {
		l.addf("%s: cannot read %s: %v", field, p, errors.Unwrap(err))
		return nil, false
	}
	if st.Size() > maxSecretFile {
		l.addf("%s: %s is larger than %d bytes", field, p, maxSecretFile)
		return nil, false
	}
	data, err := os.ReadFile(p)
	if err != nil {
		l.addf("%s: cannot read %s", field, p)
		return nil, false
	}
	return data, true
}

func (l *loader) meshDefaults(rm rawMesh) MeshDefaults {
	return MeshDefaults{
		URL:                strings.TrimSpace(l.expand("mesh.url", rm.URL)),
		SharedKey:          l.secret("mesh.sharedKey", rm.SharedKey, rm.SharedKeyFile),
		ClientCert:         l.path(l.expand("mesh.clientCert", rm.ClientCert)),
		ClientKey:          l.path(l.expand("mesh.clientKey", rm.ClientKey)),
		CACert:             l.path(l.expand("mesh.caCert", rm.CACert)),
		ChunkSize:          rm.ChunkSize,
		MaxConcurrentSends: rm.MaxConcurrentSends,
	}
}

func (l *loader) mailbox(i int, rm rawMailbox, d MeshDefaults) Mailbox {
	id := strings.ToUpper(strings.TrimSpace(l.expand(fmt.Sprintf("mailboxes[%d].id", i), rm.ID)))
	label := fmt.Sprintf("mailboxes[%d]", i)
	if id != "" {
		label = fmt.Sprintf("mailboxes[%d] (%s)", i, id)
	}
	m := Mailbox{
		ID:                 id,
		Password:           l.secret(label+".password", rm.Password, rm.PasswordFile),
		ODSCode:            strings.ToUpper(strings.TrimSpace(l.expand(label+".odsCode", rm.ODSCode))),
		URL:                cmpOr(strings.TrimSpace(l.expand(label+".url", rm.URL)), d.URL),
		SharedKey:          cmpOr(l.secret(label+".sharedKey", rm.SharedKey, rm.SharedKeyFile), d.SharedKey),
		ClientCert:         cmpOr(l.path(l.expand(label+".clientCert", rm.ClientCert)), d.ClientCert),
		ClientKey:          cmpOr(l.path(l.expand(label+".clientKey", rm.ClientKey)), d.ClientKey),
		CACert:             cmpOr(l.path(l.expand(label+".caCert", rm.CACert)), d.CACert),
		ChunkSize:          cmpOr(rm.ChunkSize, d.ChunkSize),
		MaxConcurrentSends: cmpOr(rm.MaxConcurrentSends, d.MaxConcurrentSends),
	}
	l.problems = append(l.problems, validateMailbox(label, m)...)
	return m
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v != zero {
		return v
	}
	return fallback
}

// validateMailbox checks a mailbox after defaults are merged (also used by ApplyMeshEnv).
func validateMailbox(label string, m Mailbox) []string {
	var p []string
	add := func(format string, args ...any) { p = append(p, label+": "+fmt.Sprintf(format, args...)) }
	switch {
	case m.ID == "":
		add("id is required")
	case !mailboxIDRe.MatchString(m.ID):
		add("id must be 3-20 letters or digits")
	}
	if m.Password == "" {
		add("password (or passwordFile) is required")
	}
	if m.ODSCode != "" && !odsCodeRe.MatchString(m.ODSCode) {
		add("odsCode must be 2-10 letters or digits")
	}
	if m.URL == "" {
		add("url is required (set it here or in mesh.url)")
	} else if err := checkMeshURL(m.URL); err != nil {
		add("url %v", err)
	}
	if m.SharedKey == "" {
		add("sharedKey (or sharedKeyFile) is required (set it here or in mesh)")
	}
	if (m.ClientCert == "") != (m.ClientKey == "") {
		add("clientCert and clientKey must be set together")
	}
	for _, f := range []struct{ name, path string }{{"clientCert", m.ClientCert}, {"clientKey", m.ClientKey}, {"caCert", m.CACert}} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			add("%s: cannot read %s", f.name, f.path)
		}
	}
	if m.ChunkSize != 0 && (m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize) {
		add("chunkSize must be between %d and %d bytes", MinChunkSize, MaxChunkSize)
	}
	if m.MaxConcurrentSends < 0 {
		add("maxConcurrentSends must not be negative")
	}
	return p
}

// checkMeshURL allows https, and plain http only to a loopback host (a local fake MESH).
func checkMeshURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("must be an absolute https URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must use https (http only for a loopback host)")
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (l *loader) client(i int, rc rawClient, mailboxes map[string]bool) Client {
	id := strings.TrimSpace(l.expand(fmt.Sprintf("clients[%d].id", i), rc.ID))
	label := fmt.Sprintf("clients[%d]", i)
	if id != "" {
		label = fmt.Sprintf("clients[%d] (%s)", i, id)
	}
	c := Client{
		ID:                  id,
		Name:                l.expand(label+".name", rc.Name),
		JWKSFile:            l.path(l.expand(label+".jwksFile", rc.JWKSFile)),
		JWKSURL:             strings.TrimSpace(l.expand(label+".jwksUrl", rc.JWKSURL)),
		Mailboxes:           l.expandAll(label+".mailboxes", rc.Mailboxes),
		ODSCodes:            l.expandAll(label+".odsCodes", rc.ODSCodes),
		AllowPrivateWebhook: rc.AllowPrivateWebhook,
	}
	switch {
	case id == "":
		l.addf("%s: id is required", label)
	case !clientIDRe.MatchString(id):
		l.addf("%s: id must be 1-128 of A-Z a-z 0-9 . _ - (it is the JWT iss/sub)", label)
	}

	c.Algorithms = l.algorithms(label, rc.Algorithms)

	inline := l.inlineJWKS(label, rc.JWKS)
	sources := 0
	for _, set := range []bool{inline != nil, c.JWKSFile != "", c.JWKSURL != ""} {
		if set {
			sources++
		}
	}
	switch {
	case sources == 0:
		l.addf("%s: a public key is required: set one of jwks, jwksFile or jwksUrl", label)
	case sources > 1:
		l.addf("%s: set only one of jwks, jwksFile or jwksUrl", label)
	case inline != nil:
		c.JWKS = inline
	case c.JWKSFile != "":
		if data, ok := l.readFile(label+".jwksFile", c.JWKSFile); ok {
			c.JWKS = json.RawMessage(data)
		}
	case c.JWKSURL != "":
		if u, err := url.Parse(c.JWKSURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
			l.addf("%s: jwksUrl must be an absolute https URL without credentials", label)
		}
	}
	if c.JWKS != nil {
		for _, p := range validateJWKS(c.JWKS, c.AllowedAlgorithms()) {
			l.addf("%s: %s", label, p)
		}
	}

	for j, m := range c.Mailboxes {
		c.Mailboxes[j] = strings.ToUpper(m)
		if !mailboxes[c.Mailboxes[j]] {
			l.addf("%s: mailbox %s is not configured under mailboxes (or MESH_MAILBOX_ID)", label, c.Mailboxes[j])
		}
	}
	for j, o := range c.ODSCodes {
		c.ODSCodes[j] = strings.ToUpper(o)
		if !odsCodeRe.MatchString(c.ODSCodes[j]) {
			l.addf("%s: odsCodes[%d] must be 2-10 letters or digits", label, j)
		}
	}
	if rc.Webhook != nil {
		c.Webhook = l.webhook(label, rc.Webhook, rc.AllowPrivateWebhook)
	}
	return c
}

func (l *loader) algorithms(label string, list []string) []string {
	if len(list) == 0 {
		return []string{AlgRS512}
	}
	var out []string
	for _, a := range list {
		norm := strings.ToUpper(strings.TrimSpace(a))
		switch {
		case norm == "NONE" || strings.HasPrefix(norm, "HS"):
			l.addf("%s: algorithm %q is never allowed: unsigned and shared-secret (HMAC) JWTs cannot identify a caller", label, a)
		case !slices.Contains(SupportedAlgorithms(), norm):
			l.addf("%s: algorithm %q is not supported (allowed: %s)", label, a, strings.Join(SupportedAlgorithms(), ", "))
		case !slices.Contains(out, norm):
			out = append(out, norm)
		}
	}
	return out
}

// inlineJWKS turns the jwks node (a YAML mapping, or a JSON string) into JSON.
func (l *loader) inlineJWKS(label string, n yaml.Node) json.RawMessage {
	switch n.Kind {
	case 0:
		return nil
	case yaml.ScalarNode:
		s := strings.TrimSpace(l.expand(label+".jwks", n.Value))
		if s == "" {
			return nil
		}
		if !json.Valid([]byte(s)) {
			l.addf("%s: jwks given as a string must be JSON", label)
			return json.RawMessage("{}")
		}
		return json.RawMessage(s)
	case yaml.MappingNode:
		var v any
		if err := n.Decode(&v); err != nil {
			l.addf("%s: jwks: %v", label, err)
			return json.RawMessage("{}")
		}
		data, err := json.Marshal(v)
		if err != nil {
			l.addf("%s: jwks cannot be expressed as JSON: %v", label, err)
			return json.RawMessage("{}")
		}
		return data
	default:
		l.addf("%s: jwks must be a mapping with a keys list, or a JSON string", label)
		return json.RawMessage("{}")
	}
}

// validateJWKS checks a client's key set: public keys only, each with a kid,
// parseable, strong enough, and usable with at least one allowed algorithm.
func validateJWKS(raw json.RawMessage, algorithms []string) []string {
	var set jwkset.JWKSMarshal
	if err := json.Unmarshal(raw, &set); err != nil {
		return []string{"jwks is not a JSON Web Key Set"}
	}
	if len(set.Keys) == 0 {
		return []string{"jwks has no keys"}
	}
	var p []string
	kids := map[string]bool{}
	usable := false
	for i, k := range set.Keys {
		label := fmt.Sprintf("jwks.keys[%d]", i)
		if k.D != "" || k.P != "" || k.Q != "" || k.K != "" {
			p = append(p, label+" contains private or symmetric key material: register the public key only")
			continue
		}
		if k.USE != "" && k.USE != jwkset.UseSig {
			p = append(p, fmt.Sprintf("%s: use is %q, must be \"sig\"", label, k.USE))
		}
		if k.KID == "" {
			p = append(p, label+" has no kid (JWTs must name their key)")
		} else if kids[k.KID] {
			p = append(p, fmt.Sprintf("%s: duplicate kid %q", label, k.KID))
		}
		kids[k.KID] = true
		if k.ALG != "" && !slices.Contains(algorithms, k.ALG.String()) {
			p = append(p, fmt.Sprintf("%s: alg %s is not among the client's algorithms %v", label, k.ALG, algorithms))
		}
		jwk, err := jwkset.NewJWKFromMarshal(k, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			p = append(p, fmt.Sprintf("%s is not a valid public key: %v", label, err))
			continue
		}
		switch key := jwk.Key().(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < minRSABits {
				p = append(p, fmt.Sprintf("%s: RSA key is %d bits, at least %d required", label, key.N.BitLen(), minRSABits))
			}
			usable = usable || slices.Contains(algorithms, AlgRS512) || slices.Contains(algorithms, AlgPS512)
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				p = append(p, label+": only P-256 EC keys are supported (ES256)")
			}
			usable = usable || slices.Contains(algorithms, AlgES256)
		default:
			p = append(p, fmt.Sprintf("%s: key type %s is not supported (RSA or EC P-256)", label, k.KTY))
		}
	}
	if len(p) == 0 && !usable {
		p = append(p, fmt.Sprintf("no key in jwks can verify the allowed algorithms %v", algorithms))
	}
	return p
}

func (l *loader) webhook(label string, rw *rawWebhook, allowPrivate bool) *Webhook {
	w := &Webhook{
		URL:    strings.TrimSpace(l.expand(label+".webhook.url", rw.URL)),
		Secret: l.secret(label+".webhook.secret", rw.Secret, rw.SecretFile),
	}
	if err := CheckWebhookURL(w.URL, allowPrivate); err != nil {
		l.addf("%s: webhook.url %v", label, err)
	}
	if w.Secret == "" {
		l.addf("%s: webhook.secret (or secretFile) is required", label)
	} else if _, err := DecodeWebhookSecret(w.Secret); err != nil {
		l.addf("%s: webhook.secret %v", label, err)
	}
	if rw.PreviousSecret != "" || rw.PreviousSecretFile != "" {
		w.PreviousSecret = l.secret(label+".webhook.previousSecret", rw.PreviousSecret, rw.PreviousSecretFile)
		if _, err := DecodeWebhookSecret(w.PreviousSecret); err != nil {
			l.addf("%s: webhook.previousSecret %v", label, err)
		}
	}
	return w
}

// CheckWebhookURL is the load-time SSRF guard: https only, no credentials, and
// no loopback/private/link-local IP literal or localhost unless allowPrivate
// (dev/test), which also permits plain http. Names that resolve to private
// addresses must still be refused by the deliverer at dial time.
func CheckWebhookURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return errors.New("must be an absolute https URL")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if allowPrivate {
		if u.Scheme != "https" && u.Scheme != "http" {
			return errors.New("must be an http(s) URL")
		}
		return nil
	}
	if u.Scheme != "https" {
		return errors.New("must use https (set allowPrivateWebhook: true for a dev/test http endpoint)")
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return errors.New("must not point at localhost (set allowPrivateWebhook: true for dev/test)")
	}
	if ip := net.ParseIP(host); ip != nil && !IsPublicIP(ip) {
		return errors.New("must not point at a private, loopback or link-local address (set allowPrivateWebhook: true for dev/test)")
	}
	return nil
}

// IsPublicIP reports whether ip is a globally routable unicast address.
func IsPublicIP(ip net.IP) bool {
	return !(ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || isCGNAT(ip))
}

func isCGNAT(ip net.IP) bool { // 100.64.0.0/10, shared address space
	v4 := ip.To4()
	return v4 != nil && v4[0] == 100 && v4[1]&0xC0 == 64
}

// DecodeWebhookSecret checks the Standard Webhooks secret format
// ("whsec_" + base64 of 24..64 random bytes) and returns the HMAC key bytes.
// Errors never include the secret.
func DecodeWebhookSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, webhookPrefix)
	if !ok {
		return nil, errors.New(`must start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`must be "whsec_" followed by standard base64`)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("must encode 24 to 64 bytes (has %d)", len(key))
	}
	return key, nil
}
