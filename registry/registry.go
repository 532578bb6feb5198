// Package registry holds the gateway's client and MESH mailbox registry: which
// calling applications exist, how their JWTs are verified, and which MESH
// mailboxes and ODS codes each may use. It is loaded once at start-up from the
// YAML file named by GATEWAY_CONFIG (see example.yaml) and is read-only
// afterwards, so it is safe for concurrent readers.
package registry

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Algorithms a client may be allowed to sign with. RS512 is the NHS API
// platform's only algorithm and the default; ES256 and PS512 are opt-in.
const (
	AlgRS512 = "RS512"
	AlgES256 = "ES256"
	AlgPS512 = "PS512"
)

// SupportedAlgorithms lists every algorithm a client may list, in preference order.
func SupportedAlgorithms() []string { return []string{AlgRS512, AlgES256, AlgPS512} }

// Registry is the whole configuration file after validation, env expansion,
// *File secrets resolved and mesh defaults merged into every mailbox.
type Registry struct {
	Audience  string       `yaml:"audience"`
	Mesh      MeshDefaults `yaml:"mesh"`
	Mailboxes []Mailbox    `yaml:"mailboxes"`
	Clients   []Client     `yaml:"clients"`

	mailboxIndex map[string]int // upper-case id → position in Mailboxes
	clientIndex  map[string]int // id → position in Clients
}

// MeshDefaults apply to every mailbox that does not override them.
type MeshDefaults struct {
	URL                string `yaml:"url"`
	SharedKey          string `yaml:"sharedKey"`
	ClientCert         string `yaml:"clientCert"`
	ClientKey          string `yaml:"clientKey"`
	CACert             string `yaml:"caCert"`
	ChunkSize          int64  `yaml:"chunkSize"`
	MaxConcurrentSends int    `yaml:"maxConcurrentSends"`
}

// Mailbox is one MESH mailbox the gateway sends from, with defaults merged.
// ID is upper case (MESH requires it). ChunkSize and MaxConcurrentSends are 0
// when neither the mailbox nor the defaults set them: the caller's default applies.
type Mailbox struct {
	ID                 string `yaml:"id"`
	Password           string `yaml:"password"`
	ODSCode            string `yaml:"odsCode"`
	URL                string `yaml:"url"`
	SharedKey          string `yaml:"sharedKey"`
	ClientCert         string `yaml:"clientCert"`
	ClientKey          string `yaml:"clientKey"`
	CACert             string `yaml:"caCert"`
	ChunkSize          int64  `yaml:"chunkSize"`
	MaxConcurrentSends int    `yaml:"maxConcurrentSends"`
}

// Client is one calling application. ID is both the JWT iss and sub.
// JWKS holds the public keys (inline, or read from JWKSFile at load);
// JWKSURL is fetched and cached by the auth package instead.
type Client struct {
	ID                  string          `yaml:"id"`
	Name                string          `yaml:"name"`
	JWKS                json.RawMessage `yaml:"jwks"`
	JWKSFile            string          `yaml:"jwksFile"`
	JWKSURL             string          `yaml:"jwksUrl"`
	Algorithms          []string        `yaml:"algorithms"`
	Mailboxes           []string        `yaml:"mailboxes"`
	ODSCodes            []string        `yaml:"odsCodes"`
	Webhook             *Webhook        `yaml:"webhook"`
	AllowPrivateWebhook bool            `yaml:"allowPrivateWebhook"`
}

// Webhook is where acknowledgement events for a client are delivered, signed
// with Secret per Standard Webhooks ("whsec_" + base64 of 24..64 bytes).
// PreviousSecret, while set, signs every delivery too (the
// webhook-signature header lists both), so a receiver can move to the new
// secret at its own pace.
type Webhook struct {
	URL            string `yaml:"url"`
	Secret         string `yaml:"secret"`
	PreviousSecret string `yaml:"previousSecret"`
}

// Secrets are the signing secrets, the current one first.
func (w Webhook) Secrets() []string {
	if w.PreviousSecret == "" {
		return []string{w.Secret}
	}
	return []string{w.Secret, w.PreviousSecret}
}

// Client returns the registered client whose id is exactly id (JWT iss is case sensitive).
func (r *Registry) Client(id string) (*Client, bool) {
	if i, ok := r.clientIndex[id]; ok && i < len(r.Clients) && r.Clients[i].ID == id {
		return &r.Clients[i], true
	}
	for i := range r.Clients { // index absent (Registry built in code) or stale
		if r.Clients[i].ID == id {
			return &r.Clients[i], true
		}
	}
	return nil, false
}

// Mailbox returns the configured mailbox with this id (case-insensitive: MESH ids are upper case).
func (r *Registry) Mailbox(id string) (*Mailbox, bool) {
	key := strings.ToUpper(id)
	if i, ok := r.mailboxIndex[key]; ok && i < len(r.Mailboxes) && strings.EqualFold(r.Mailboxes[i].ID, key) {
		return &r.Mailboxes[i], true
	}
	for i := range r.Mailboxes {
		if strings.EqualFold(r.Mailboxes[i].ID, key) {
			return &r.Mailboxes[i], true
		}
	}
	return nil, false
}

// ChunkSizes maps each mailbox that sets a chunk size (its own chunkSize,
// else mesh.chunkSize) to it, by upper-case id; the others are absent and
// use the gateway's MESH_CHUNK_SIZE.
func (r *Registry) ChunkSizes() map[string]int64 {
	return perMailbox(r, func(m Mailbox) int64 { return m.ChunkSize })
}

// SendLimits maps each mailbox with its own maxConcurrentSends (MESH id,
// upper case) to it; the rest use MESH_MAX_CONCURRENT_SENDS.
func (r *Registry) SendLimits() map[string]int {
	return perMailbox(r, func(m Mailbox) int { return m.MaxConcurrentSends })
}

// perMailbox maps the upper-case id of every mailbox whose setting is set
// (positive) to it.
func perMailbox[T int | int64](r *Registry, setting func(Mailbox) T) map[string]T {
	out := make(map[string]T)
	for _, m := range r.Mailboxes {
		if v := setting(m); v > 0 {
			out[strings.ToUpper(m.ID)] = v
		}
	}
	return out
}

func (r *Registry) reindex() {
	r.mailboxIndex = make(map[string]int, len(r.Mailboxes))
	for i, m := range r.Mailboxes {
		r.mailboxIndex[strings.ToUpper(m.ID)] = i
	}
	r.clientIndex = make(map[string]int, len(r.Clients))
	for i, c := range r.Clients {
		r.clientIndex[c.ID] = i
	}
}

// MaySendAs reports whether the client may send from the MESH mailbox (case-insensitive).
func (c *Client) MaySendAs(mailbox string) bool {
	return mailbox != "" && slices.ContainsFunc(c.Mailboxes, func(m string) bool { return strings.EqualFold(m, mailbox) })
}

// MayUseODS reports whether the client may use this sender ODS code (case-insensitive).
func (c *Client) MayUseODS(code string) bool {
	return code != "" && slices.ContainsFunc(c.ODSCodes, func(o string) bool { return strings.EqualFold(o, code) })
}

// AllowedAlgorithms returns the client's algorithms, RS512 when none are listed.
func (c *Client) AllowedAlgorithms() []string {
	if len(c.Algorithms) == 0 {
		return []string{AlgRS512}
	}
	return c.Algorithms
}

// The String and LogValue methods below keep passwords, shared keys and
// webhook secrets out of logs and error messages even when a whole struct is
// printed by mistake.

func (m Mailbox) String() string {
	return fmt.Sprintf("Mailbox{ID:%s ODSCode:%s URL:%s Password:%s SharedKey:%s}", m.ID, m.ODSCode, m.URL, redact(m.Password), redact(m.SharedKey))
}

// GoString keeps %#v redacted too.
func (m Mailbox) GoString() string { return m.String() }

// LogValue implements slog.LogValuer without secrets.
func (m Mailbox) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", m.ID), slog.String("odsCode", m.ODSCode), slog.String("url", m.URL))
}

func (d MeshDefaults) String() string {
	return fmt.Sprintf("MeshDefaults{URL:%s SharedKey:%s}", d.URL, redact(d.SharedKey))
}

// GoString keeps %#v redacted too.
func (d MeshDefaults) GoString() string { return d.String() }

func (w Webhook) String() string {
	return fmt.Sprintf("Webhook{URL:%s Secret:%s PreviousSecret:%s}", w.URL, redact(w.Secret), redact(w.PreviousSecret))
}

// GoString keeps %#v redacted too.
func (w Webhook) GoString() string { return w.String() }

// LogValue implements slog.LogValuer without the secret.
func (w Webhook) LogValue() slog.Value { return slog.GroupValue(slog.String("url", w.URL)) }

// LogValue implements slog.LogValuer: ids and permissions only.
func (c Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", c.ID), slog.Any("mailboxes", c.Mailboxes), slog.Any("odsCodes", c.ODSCodes))
}

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[REDACTED]"
}
