package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/meshgateway/gateway/meshbridge"
)

const meshUsage = `usage: gateway mesh <command> [arguments] [flags]

MESH operator tools. Connection settings come from the environment:
  MESH_URL               base URL, e.g. https://msg.intspineservices.nhs.uk (required)
  MESH_MAILBOX_ID        mailbox id (required)
  MESH_MAILBOX_PASSWORD  mailbox password (required)
  MESH_SHARED_KEY        environment shared secret (required)
  MESH_CLIENT_CERT       client certificate PEM path  } mutual TLS, used when set
  MESH_CLIENT_KEY        client private key PEM path  }
  MESH_CA_CERT           CA bundle PEM path (default: system roots)
  MESH_PROXY_URL         optional HTTP(S) proxy (default: HTTPS_PROXY)

commands:
  handshake                              validate the mailbox
  send [FILE|-] --to ID --workflow WF    send a file (or stdin); prints {"message_id","chunks"}
       [--subject S] [--local-id L] [--file-name F] [--content-type T]
       [--checksum C] [--partner-id P] [--chunk-size BYTES] [--compress]
  inbox [--workflow WF] [--max N]        list every waiting message id (all pages) as JSON
  download ID [--out FILE] [--headers-out FILE]
                                         write the body to FILE (default stdout) and the
                                         mex-* headers as JSON to --headers-out (default stderr)
  ack ID                                 acknowledge (remove) a downloaded message
  track ID                               tracking record of a sent message (JSON)
  lookup ODS WORKFLOW                    endpoint lookup (JSON)
  workflows WORKFLOW                     mailboxes registered for a workflow (JSON)
`

// usageError carries the usage text so the operator sees what to type.
type usageError struct{ msg string }

func (e usageError) Error() string { return "mesh: " + e.msg + "\n\n" + meshUsage }

func runMesh(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"missing command"}
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, meshUsage)
		return err
	case "handshake", "send", "inbox", "download", "ack", "track", "lookup", "workflows":
	default:
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
	m := &meshCLI{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	switch cmd {
	case "handshake":
		return m.handshake(ctx, args)
	case "send":
		return m.send(ctx, args)
	case "inbox":
		return m.inbox(ctx, args)
	case "download":
		return m.download(ctx, args)
	case "ack":
		return m.ack(ctx, args)
	case "track":
		return m.track(ctx, args)
	case "lookup":
		return m.lookup(ctx, args)
	default:
		return m.workflows(ctx, args)
	}
}

type meshCLI struct {
	getenv         func(string) string
	stdin          io.Reader
	stdout, stderr io.Writer
}

// client builds a MESH client from the environment, then applies tweaks.
func (m *meshCLI) client(tweaks ...func(*meshbridge.Config)) (*meshbridge.Client, error) {
	cfg := meshbridge.Config{
		BaseURL:       m.getenv("MESH_URL"),
		MailboxID:     m.getenv("MESH_MAILBOX_ID"),
		Password:      m.getenv("MESH_MAILBOX_PASSWORD"),
		SharedKey:     m.getenv("MESH_SHARED_KEY"),
		ProxyURL:      m.getenv("MESH_PROXY_URL"),
		ClientName:    "mesh-gateway-cli",
		ClientVersion: "dev",
		Logger:        slog.New(slog.NewTextHandler(m.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	var missing []string
	for name, v := range map[string]string{"MESH_URL": cfg.BaseURL, "MESH_MAILBOX_ID": cfg.MailboxID,
		"MESH_MAILBOX_PASSWORD": cfg.Password, "MESH_SHARED_KEY": cfg.SharedKey} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, usageError{"set " + strings.Join(missing, ", ")}
	}
	cert, key, ca := m.getenv("MESH_CLIENT_CERT"), m.getenv("MESH_CLIENT_KEY"), m.getenv("MESH_CA_CERT")
	if cert != "" || key != "" || ca != "" {
		tlsCfg, err := meshbridge.LoadTLSConfig(cert, key, ca)
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		cfg.TLS = tlsCfg
	}
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	c, err := meshbridge.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	return c, nil
}

// parseArgs parses flags that may come before or after positional arguments
// and checks the positional count.
func parseArgs(fs *flag.FlagSet, args []string, names ...string) ([]string, error) {
	pos, err := interleavedArgs(fs, args)
	if err != nil {
		return nil, usageError{fs.Name() + ": " + err.Error()}
	}
	if len(pos) != len(names) {
		want := "no arguments"
		if len(names) > 0 {
			want = strings.Join(names, " ")
		}
		return nil, usageError{fs.Name() + " takes " + want}
	}
	return pos, nil
}

func (m *meshCLI) handshake(ctx context.Context, args []string) error {
	if _, err := parseArgs(flag.NewFlagSet("handshake", flag.ContinueOnError), args); err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	if err := c.Handshake(ctx); err != nil {
		return fmt.Errorf("mesh handshake: %w", err)
	}
	return writeJSON(m.stdout, map[string]string{"mailbox_id": c.MailboxID(), "status": "ok"})
}

func (m *meshCLI) send(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	var opts meshbridge.SendOptions
	fs.StringVar(&opts.To, "to", "", "recipient mailbox id (mex-To)")
	fs.StringVar(&opts.WorkflowID, "workflow", "", "workflow id (mex-WorkflowID)")
	fs.StringVar(&opts.Subject, "subject", "", "mex-Subject")
	fs.StringVar(&opts.LocalID, "local-id", "", "mex-LocalID (no patient data)")
	fs.StringVar(&opts.FileName, "file-name", "", "mex-FileName (default: MESH uses {message_id}.dat)")
	fs.StringVar(&opts.ContentType, "content-type", "", "mex-Content-Type")
	fs.StringVar(&opts.Checksum, "checksum", "", "mex-Content-Checksum")
	fs.StringVar(&opts.PartnerID, "partner-id", "", "mex-PartnerID")
	fs.Int64Var(&opts.ChunkSize, "chunk-size", 0, "uncompressed bytes per chunk (default 20 MiB)")
	compress := fs.Bool("compress", false, "gzip each chunk (Content-Encoding: gzip)")
	pos, err := parseArgs(fs, args, "FILE|-")
	if err != nil {
		return err
	}
	if opts.To == "" || opts.WorkflowID == "" {
		return usageError{"send needs --to and --workflow"}
	}
	body, size, cleanup, err := openPayload(pos[0], m.stdin)
	if err != nil {
		return err
	}
	defer cleanup()
	c, err := m.client(func(cfg *meshbridge.Config) { cfg.Compress = *compress })
	if err != nil {
		return err
	}
	res, err := c.Send(ctx, opts, body, size)
	if err != nil {
		var fce *meshbridge.FirstChunkError
		if errors.As(err, &fce) && fce.Uncertain {
			return fmt.Errorf("mesh send: %w (MESH may have created the message: check the recipient or tracking before resending)", err)
		}
		if res.MessageID != "" {
			return fmt.Errorf("mesh send: message %s incomplete after %d chunks: %w", res.MessageID, res.Chunks, err)
		}
		return fmt.Errorf("mesh send: %w", err)
	}
	return writeJSON(m.stdout, map[string]any{"message_id": res.MessageID, "chunks": res.Chunks})
}

// openPayload opens FILE, or spools stdin ("-") to a temporary file so the
// size is known before the first chunk (mex-Chunk-Range 1:n) without holding
// the message in memory.
func openPayload(name string, stdin io.Reader) (io.Reader, int64, func(), error) {
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("mesh send: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			_ = f.Close()
			return nil, 0, nil, fmt.Errorf("mesh send: %w", err)
		}
		if !st.Mode().IsRegular() {
			_ = f.Close()
			return nil, 0, nil, fmt.Errorf("mesh send: %s is not a regular file", name)
		}
		return f, st.Size(), func() { _ = f.Close() }, nil
	}
	tmp, err := os.CreateTemp("", "mesh-send-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("mesh send: spool stdin: %w", err)
	}
	cleanup := func() { _ = tmp.Close(); _ = os.Remove(tmp.Name()) }
	size, err := io.Copy(tmp, stdin)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("mesh send: spool stdin: %w", err)
	}
	return tmp, size, cleanup, nil
}

func (m *meshCLI) inbox(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inbox", flag.ContinueOnError)
	wf := fs.String("workflow", "", "only messages of this workflow id")
	maxResults := fs.Int("max", 0, "page size, 10..5000 (default: server's 500)")
	if _, err := parseArgs(fs, args); err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	ids := []string{}
	err = c.InboxAll(ctx, meshbridge.InboxOptions{MaxResults: *maxResults, WorkflowFilter: *wf}, func(page []string) error {
		ids = append(ids, page...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("mesh inbox: %w", err)
	}
	return writeJSON(m.stdout, ids)
}

func (m *meshCLI) download(ctx context.Context, args []string) (err error) {
	fs := flag.NewFlagSet("download", flag.ContinueOnError)
	out := fs.String("out", "", "write the body to this file (default stdout)")
	headersOut := fs.String("headers-out", "", "write the mex-* headers JSON to this file (default stderr)")
	pos, err := parseArgs(fs, args, "ID")
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	w := m.stdout
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("mesh download: %w", err)
		}
		defer func() {
			if cerr := f.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("mesh download: %w", cerr)
			}
			if err != nil {
				_ = os.Remove(*out) // never leave a partial message behind
			}
		}()
		w = f
	}
	meta, err := c.Download(ctx, pos[0], w)
	if err != nil {
		return fmt.Errorf("mesh download: %w", err)
	}
	hdrs := map[string]string{}
	for name, v := range meta.Raw {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "mex-") || lower == "content-type" || lower == "content-encoding" {
			hdrs[lower] = strings.Join(v, ", ")
		}
	}
	hw := m.stderr
	if *headersOut != "" {
		f, err := os.OpenFile(*headersOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return fmt.Errorf("mesh download: %w", err)
		}
		defer f.Close()
		hw = f
	}
	enc := json.NewEncoder(hw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(hdrs); err != nil {
		return fmt.Errorf("mesh download: write headers: %w", err)
	}
	return nil
}

func (m *meshCLI) ack(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("ack", flag.ContinueOnError), args, "ID")
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	if err := c.Acknowledge(ctx, pos[0]); err != nil {
		return fmt.Errorf("mesh ack: %w", err)
	}
	return writeJSON(m.stdout, map[string]any{"message_id": pos[0], "acknowledged": true})
}

func (m *meshCLI) track(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("track", flag.ContinueOnError), args, "ID")
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	t, err := c.Track(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("mesh track: %w", err)
	}
	return writeJSON(m.stdout, t)
}

func (m *meshCLI) lookup(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("lookup", flag.ContinueOnError), args, "ODS", "WORKFLOW")
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	eps, err := c.EndpointLookup(ctx, pos[0], pos[1])
	if err != nil {
		return fmt.Errorf("mesh lookup: %w", err)
	}
	return writeJSON(m.stdout, eps)
}

func (m *meshCLI) workflows(ctx context.Context, args []string) error {
	pos, err := parseArgs(flag.NewFlagSet("workflows", flag.ContinueOnError), args, "WORKFLOW")
	if err != nil {
		return err
	}
	c, err := m.client()
	if err != nil {
		return err
	}
	eps, err := c.WorkflowSearch(ctx, pos[0])
	if err != nil {
		return fmt.Errorf("mesh workflows: %w", err)
	}
	return writeJSON(m.stdout, eps)
}
