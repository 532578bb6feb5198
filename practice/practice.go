// Package practice plays a patient's registered GP practice on a MESH
// mailbox: it collects Send Document messages, validates them as a GP system
// would, and answers with real ITK3 acknowledgements — an infrastructure ack
// (20013, or the negative code validation gives) and then a business ack
// (30001, or 30002/30003 for configured patients). It backs the embedded demo
// and the end-to-end tests.
package practice

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge"
)

// Mesh is the practice's MESH client (*meshbridge.Client).
type Mesh interface {
	MailboxID() string
	Inbox(ctx context.Context, opts meshbridge.InboxOptions) (*meshbridge.InboxPage, error)
	Download(ctx context.Context, messageID string, w io.Writer) (*meshbridge.MessageMetadata, error)
	Acknowledge(ctx context.Context, messageID string) error
	Send(ctx context.Context, opts meshbridge.SendOptions, body io.Reader, size int64) (meshbridge.SendResult, error)
}

// Config describes the practice.
type Config struct {
	ODSCode string
	Name    string
	// BusinessCodes answers a business ack other than 30001 for an NHS
	// number: "30002" (not known here) or "30003" (no longer registered).
	BusinessCodes map[string]string
	// InfAckCodes forces a negative infrastructure ack for an NHS number
	// (e.g. "20009") even when the message validates.
	InfAckCodes map[string]string
	Interval    time.Duration // poll interval in Run
	BusAckDelay time.Duration // time between the infrastructure and business acks
	Format      itk.Format    // wire format of the acks (default: the same as the message)
	Now         func() time.Time
	Logger      *slog.Logger
}

// Practice answers Send Document messages.
type Practice struct {
	cfg  Config
	mesh Mesh
	mu   sync.Mutex
	seen map[string]bool // ITK Bundle identifiers already filed (duplicate → 20007)
}

// New builds a simulated practice on a MESH mailbox.
func New(mesh Mesh, cfg Config) *Practice {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Practice{cfg: cfg, mesh: mesh, seen: map[string]bool{}}
}

// Run polls the practice inbox until ctx ends.
func (p *Practice) Run(ctx context.Context) error {
	for {
		if _, err := p.PollOnce(ctx); err != nil && ctx.Err() == nil {
			p.cfg.Logger.WarnContext(ctx, "simulated practice poll failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.cfg.Interval):
		}
	}
}

// PollOnce handles every Send Document message waiting in the inbox and
// returns how many it answered.
func (p *Practice) PollOnce(ctx context.Context) (int, error) {
	n := 0
	for _, wf := range []string{itk.WorkflowSendDocument, itk.WorkflowV1ConsultReport} {
		page, err := p.mesh.Inbox(ctx, meshbridge.InboxOptions{WorkflowFilter: wf})
		if err != nil {
			return n, fmt.Errorf("meshbridge.Inbox: %w", err)
		}
		for _, id := range page.Messages {
			if err := p.Handle(ctx, id); err != nil {
				return n, err
			}
			n++
		}
	}
	return n, nil
}

// Handle downloads one message, acknowledges it in MESH (the sender's MESH
// tracking then shows it collected), and answers with ITK3 acks.
func (p *Practice) Handle(ctx context.Context, meshID string) error {
	var body bytes.Buffer
	meta, err := p.mesh.Download(ctx, meshID, &body)
	if err != nil {
		return fmt.Errorf("meshbridge.Download: %w", err)
	}
	if err := p.mesh.Acknowledge(ctx, meshID); err != nil {
		return fmt.Errorf("meshbridge.Acknowledge: %w", err)
	}
	if meta.IsReport() {
		return nil
	}
	res := itk.Validate(body.Bytes(), "")
	format := p.cfg.Format
	if format == "" {
		format = res.Format
	}
	if format == "" {
		format = itk.FormatXML
	}
	replyTo := res.SourceEndpoint
	if replyTo == "" || !strings.EqualFold(replyTo, meta.From) {
		replyTo = meta.From // ITK3 10009 default: answer the mailbox it came from
	}
	nhs := nhsNumberFrom(res)

	infCode, diag := "20013", ""
	switch {
	case !res.Valid:
		infCode, diag = res.InfAckCode, firstError(res)
	case p.cfg.InfAckCodes[nhs] != "":
		infCode, diag = p.cfg.InfAckCodes[nhs], "Rejected by the simulated practice's configuration"
	case p.duplicate(res.BundleIdentifier):
		infCode, diag = "20007", "Bundle with this message identifier has already been processed"
	}
	if infCode == "" {
		infCode = "20009"
	}
	if err := p.answer(ctx, infCode, diag, res, meta, replyTo, format); err != nil {
		return err
	}
	p.cfg.Logger.InfoContext(ctx, "simulated practice sent infrastructure ack", "mesh_message_id", meshID, "code", infCode)
	if rc, _ := itk.LookupResponseCode(infCode); !rc.Positive {
		return nil // negative codes are fatal: no business response follows
	}
	if p.cfg.BusAckDelay > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(p.cfg.BusAckDelay):
		}
	}
	busCode := "30001"
	if c := p.cfg.BusinessCodes[nhs]; c != "" {
		busCode = c
	}
	if err := p.answer(ctx, busCode, "", res, meta, replyTo, format); err != nil {
		return err
	}
	p.cfg.Logger.InfoContext(ctx, "simulated practice sent business ack", "mesh_message_id", meshID, "code", busCode)
	return nil
}

func (p *Practice) answer(ctx context.Context, code, diag string, res *itk.Result, meta *meshbridge.MessageMetadata, to string, f itk.Format) error {
	var buf bytes.Buffer
	ack, err := itk.BuildAck(itk.AckRequest{
		Code: code, Diagnostics: diag, RespondsTo: res.MessageHeaderID, SenderReference: res.SenderReference,
		SourceEndpoint: p.mesh.MailboxID(), ResponderODSCode: p.cfg.ODSCode, ResponderName: p.cfg.Name, Now: p.cfg.Now,
	}, f, &buf)
	if err != nil {
		return fmt.Errorf("itk.BuildAck: %w", err)
	}
	md := itk.AckMetadata(ack, meta.WorkflowID, to)
	_, err = p.mesh.Send(ctx, meshbridge.SendOptions{
		To: md.To, WorkflowID: md.WorkflowID, Subject: md.Subject, LocalID: p.cfg.ODSCode,
		FileName: md.FileName, ContentType: md.ContentType,
	}, bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return fmt.Errorf("meshbridge.Send ack: %w", err)
	}
	return nil
}

func (p *Practice) duplicate(bundleIdentifier string) bool {
	if bundleIdentifier == "" {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen[bundleIdentifier] {
		return true
	}
	p.seen[bundleIdentifier] = true
	return false
}

// nhsNumberFrom reads the NHS number from the derived GP lookup address.
func nhsNumberFrom(res *itk.Result) string {
	if res.Metadata == nil {
		return ""
	}
	parts := strings.Split(res.Metadata.To, "_")
	if len(parts) >= 2 && parts[0] == "GPPROVIDER" {
		return parts[1]
	}
	return ""
}

func firstError(res *itk.Result) string {
	if res.Outcome == nil {
		return ""
	}
	for _, is := range res.Outcome.Issue {
		if is.Severity == itk.SeverityError || is.Severity == itk.SeverityFatal {
			return is.Diagnostics
		}
	}
	return ""
}
