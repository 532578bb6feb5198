// Package fakemesh is an in-memory MESH server that reproduces the NHS MESH
// REST API and the official mesh-sandbox as recorded in
// shared/reference/mesh-api.md: HMAC authentication, v1/v2 bodies, chunked
// uploads and downloads, tracking, GPPROVIDER demographic routing with EPL-15x
// error reports, inbox expiry reports (code 14), test-only admin endpoints and
// deterministic fault injection for reliability tests.
package fakemesh

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Mailbox is one MESH mailbox the server knows. IDs are matched upper-case.
type Mailbox struct {
	ID       string `yaml:"id" json:"id"`
	Password string `yaml:"password" json:"password"`
	ODSCode  string `yaml:"odsCode" json:"odsCode"`
	Name     string `yaml:"name" json:"name"`
}

// Workflow lists the mailboxes allowed to send and receive one workflow ID.
// Empty Senders means anyone may send (the sandbox does not enforce
// permissions); Receivers drive endpoint lookup and workflow search.
type Workflow struct {
	ID        string   `yaml:"id" json:"id"`
	Senders   []string `yaml:"senders" json:"senders"`
	Receivers []string `yaml:"receivers" json:"receivers"`
}

// Patient is one row of the simulated PDS used by GPPROVIDER routing.
type Patient struct {
	NHSNumber string `yaml:"nhsNumber" json:"nhsNumber"`
	BirthDate string `yaml:"birthDate" json:"birthDate"` // YYYYMMDD
	Surname   string `yaml:"surname" json:"surname"`
	Mailbox   string `yaml:"mailbox" json:"mailbox"` // registered practice mailbox; empty gives EPL-151
	// LookupError forces a lookup failure code (EPL-150..EPL-154) for this patient.
	LookupError string `yaml:"lookupError,omitempty" json:"lookupError,omitempty"`
}

// Faults configures deterministic fault injection on /messageexchange routes.
type Faults struct {
	ErrorRate float64       `yaml:"errorRate" json:"errorRate"` // share of requests answered with a status from Statuses
	Statuses  []int         `yaml:"statuses" json:"statuses"`   // default 500, 502, 503, 429
	DropRate  float64       `yaml:"dropRate" json:"dropRate"`   // share of connections closed without a response (half before, half after processing)
	Latency   time.Duration `yaml:"-" json:"-"`                 // added to every faulted-route request
	Seed      int64         `yaml:"seed" json:"seed"`
}

// Config configures a Server.
type Config struct {
	SharedKey string
	Mailboxes []Mailbox
	Workflows []Workflow
	Patients  []Patient
	// AuthMode is "full" (default: HMAC, 2 h timestamp window, replayed tokens
	// refused as real MESH does) or "none" (mailbox taken from the path).
	AuthMode      string
	InboxExpiry   time.Duration // default 5 days; uncollected messages then produce a code 14 report
	MessageExpiry time.Duration // default 30 days; message records are then deleted
	Faults        Faults
	Now           func() time.Time
	Logger        *slog.Logger
}

// Auth modes.
const (
	AuthFull = "full"
	AuthNone = "none"
)

const (
	defaultInboxExpiry   = 5 * 24 * time.Hour
	defaultMessageExpiry = 30 * 24 * time.Hour
)

// DefaultStatuses are the statuses used for injected errors when Faults.Statuses is empty.
func DefaultStatuses() []int { return []int{500, 502, 503, 429} }

// Demo identities used by DefaultConfig.
const (
	DemoSharedKey       = "TestKey"
	DemoPassword        = "password"
	DemoSenderMailbox   = "X26ABC1"
	DemoPracticeMailbox = "X26GP001"
)

// DefaultConfig is the demo setup used by `gateway fakemesh` and the
// gateway's embedded MESH: the sandbox's X26ABC1..3 mailboxes, two GP
// practice mailboxes, and a patient table whose NHS numbers pass Modulus 11.
func DefaultConfig() Config {
	senders := []string{"X26ABC1", "X26ABC2"}
	practices := []string{"X26GP001", "X26GP002", "X26ABC2"}
	return Config{
		SharedKey: DemoSharedKey,
		AuthMode:  AuthFull,
		Mailboxes: []Mailbox{
			{ID: "X26ABC1", Password: DemoPassword, ODSCode: "X26", Name: "Demo sender X26ABC1"},
			{ID: "X26ABC2", Password: DemoPassword, ODSCode: "X26", Name: "Demo recipient X26ABC2"},
			{ID: "X26ABC3", Password: DemoPassword, ODSCode: "X27", Name: "Demo recipient X26ABC3"},
			{ID: "X26GP001", Password: DemoPassword, ODSCode: "A81001", Name: "Demo GP practice A81001"},
			{ID: "X26GP002", Password: DemoPassword, ODSCode: "A81002", Name: "Demo GP practice A81002"},
		},
		Workflows: []Workflow{
			{ID: "GPCONNECT_SEND_DOCUMENT", Senders: senders, Receivers: practices},
			{ID: "GPCONNECT_SEND_DOCUMENT_ACK", Senders: practices, Receivers: senders},
			{ID: "GPFED_CONSULT_REPORT", Senders: senders, Receivers: practices},
			{ID: "GPFED_CONSULT_REPORT_ACK", Senders: practices, Receivers: senders},
			{ID: "TEST_WORKFLOW", Receivers: []string{"X26ABC2"}},
			{ID: "TEST_WORKFLOW_ACK", Receivers: []string{"X26ABC1", "X26ABC3"}},
		},
		Patients: []Patient{
			{NHSNumber: "9000000009", BirthDate: "19670126", Surname: "SMITH", Mailbox: "X26GP001"},
			{NHSNumber: "9000000017", BirthDate: "20010214", Surname: "JONES", Mailbox: "X26GP001"},
			{NHSNumber: "9000000025", BirthDate: "19550109", Surname: "MOWERS", Mailbox: "X26GP002"},
			{NHSNumber: "9000000033", BirthDate: "19800101", Surname: "TAYLOR"},                        // no practice mailbox: EPL-151
			{NHSNumber: "9000000041", BirthDate: "19900505", Surname: "BROWN", LookupError: "EPL-150"}, // forced: multiple mailboxes
		},
	}
}

// duration accepts "90s", "5m", "120h" in config files.
type duration time.Duration

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(b)))
	if err != nil {
		return fmt.Errorf("duration %q: %w", string(b), err)
	}
	*d = duration(v)
	return nil
}

// faultsDoc is the file / admin JSON form of Faults (latency as a duration string).
type faultsDoc struct {
	ErrorRate float64  `yaml:"errorRate" json:"errorRate"`
	Statuses  []int    `yaml:"statuses" json:"statuses"`
	DropRate  float64  `yaml:"dropRate" json:"dropRate"`
	Latency   duration `yaml:"latency" json:"latency"`
	Seed      int64    `yaml:"seed" json:"seed"`
}

func (d faultsDoc) faults() Faults {
	return Faults{ErrorRate: d.ErrorRate, Statuses: d.Statuses, DropRate: d.DropRate, Latency: time.Duration(d.Latency), Seed: d.Seed}
}

// fileConfig is the documented config file format (see example-config.yaml).
type fileConfig struct {
	SharedKey     string     `yaml:"sharedKey" json:"sharedKey"`
	AuthMode      string     `yaml:"authMode" json:"authMode"`
	InboxExpiry   duration   `yaml:"inboxExpiry" json:"inboxExpiry"`
	MessageExpiry duration   `yaml:"messageExpiry" json:"messageExpiry"`
	Mailboxes     []Mailbox  `yaml:"mailboxes" json:"mailboxes"`
	Workflows     []Workflow `yaml:"workflows" json:"workflows"`
	Patients      []Patient  `yaml:"patients" json:"patients"`
	Faults        faultsDoc  `yaml:"faults" json:"faults"`
}

// LoadConfigFile reads a YAML (.yaml/.yml) or JSON (.json) config file in the
// format shown in example-config.yaml. Unknown keys are rejected so typos fail loudly.
func LoadConfigFile(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read fakemesh config: %w", err)
	}
	var doc fileConfig
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml":
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			return Config{}, fmt.Errorf("parse fakemesh config %s: %w", filepath.Base(path), err)
		}
	case ".json":
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			return Config{}, fmt.Errorf("parse fakemesh config %s: %w", filepath.Base(path), err)
		}
	default:
		return Config{}, fmt.Errorf("fakemesh config %s: extension must be .yaml, .yml or .json", filepath.Base(path))
	}
	cfg := Config{
		SharedKey:     doc.SharedKey,
		AuthMode:      doc.AuthMode,
		InboxExpiry:   time.Duration(doc.InboxExpiry),
		MessageExpiry: time.Duration(doc.MessageExpiry),
		Mailboxes:     doc.Mailboxes,
		Workflows:     doc.Workflows,
		Patients:      doc.Patients,
		Faults:        doc.Faults.faults(),
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Errors returned by config validation.
var (
	ErrNoMailboxes = errors.New("fakemesh: at least one mailbox is required")
	ErrBadConfig   = errors.New("fakemesh: invalid config")
)

// lookupErrorDescriptions are the GPPROVIDER lookup failures
// (itk3-send-document.md §2.2, sandbox constants).
var lookupErrorDescriptions = map[string]string{
	"EPL-150": "Multiple mailboxes matches",
	"EPL-151": "No mailbox matched",
	"EPL-152": "Invalid NHS Number",
	"EPL-153": "NHS Number not found",
	"EPL-154": "NHS Number supplied does not match the demographics",
}

func (c *Config) validate() error {
	if len(c.Mailboxes) == 0 {
		return ErrNoMailboxes
	}
	switch c.AuthMode {
	case "", AuthFull, AuthNone:
	default:
		return fmt.Errorf("%w: authMode %q (want full or none)", ErrBadConfig, c.AuthMode)
	}
	if c.AuthMode != AuthNone && c.SharedKey == "" {
		return fmt.Errorf("%w: sharedKey is required when authMode is full", ErrBadConfig)
	}
	ids := make(map[string]bool, len(c.Mailboxes))
	for i, m := range c.Mailboxes {
		id := strings.ToUpper(strings.TrimSpace(m.ID))
		if id == "" {
			return fmt.Errorf("%w: mailbox %d has no id", ErrBadConfig, i)
		}
		if ids[id] {
			return fmt.Errorf("%w: duplicate mailbox %s", ErrBadConfig, id)
		}
		ids[id] = true
	}
	for _, w := range c.Workflows {
		if strings.TrimSpace(w.ID) == "" {
			return fmt.Errorf("%w: workflow without id", ErrBadConfig)
		}
		for _, m := range append(append([]string(nil), w.Senders...), w.Receivers...) {
			if !ids[strings.ToUpper(strings.TrimSpace(m))] {
				return fmt.Errorf("%w: workflow %s names unknown mailbox %s", ErrBadConfig, w.ID, m)
			}
		}
	}
	for i, p := range c.Patients {
		// Patient data never goes into error strings: rows are identified by index.
		if p.Mailbox != "" && !ids[strings.ToUpper(strings.TrimSpace(p.Mailbox))] {
			return fmt.Errorf("%w: patient row %d names unknown mailbox %s", ErrBadConfig, i, p.Mailbox)
		}
		if p.LookupError != "" {
			if _, ok := lookupErrorDescriptions[p.LookupError]; !ok {
				return fmt.Errorf("%w: patient row %d lookupError must be EPL-150..EPL-154", ErrBadConfig, i)
			}
		}
		if len(p.BirthDate) != 8 {
			return fmt.Errorf("%w: patient row %d birthDate must be YYYYMMDD", ErrBadConfig, i)
		}
		if _, err := time.Parse("20060102", p.BirthDate); err != nil {
			return fmt.Errorf("%w: patient row %d birthDate must be YYYYMMDD", ErrBadConfig, i)
		}
	}
	if err := c.Faults.validate(); err != nil {
		return err
	}
	return nil
}

func (f Faults) validate() error {
	if f.ErrorRate < 0 || f.DropRate < 0 || f.ErrorRate+f.DropRate > 1 {
		return fmt.Errorf("%w: faults errorRate and dropRate must be >= 0 and sum to <= 1", ErrBadConfig)
	}
	if f.Latency < 0 {
		return fmt.Errorf("%w: faults latency must be >= 0", ErrBadConfig)
	}
	for _, s := range f.Statuses {
		if s < 400 || s > 599 {
			return fmt.Errorf("%w: fault status %d must be 4xx or 5xx", ErrBadConfig, s)
		}
	}
	return nil
}
