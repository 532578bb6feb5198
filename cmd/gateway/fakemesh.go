package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/meshgateway/gateway/meshbridge/fakemesh"
)

// repeated collects a repeatable string flag.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error { *r = append(*r, v); return nil }

// runFakeMesh implements `gateway fakemesh`: a local MESH server for trying
// the gateway without NHS credentials and for end-to-end tests. It serves
// until ctx is cancelled, then shuts down gracefully.
func runFakeMesh(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway fakemesh", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", envOr(getenv, "FAKEMESH_ADDR", "127.0.0.1:8700"), "listen address (env FAKEMESH_ADDR)")
	configPath := fs.String("config", getenv("FAKEMESH_CONFIG"), "YAML/JSON config file (env FAKEMESH_CONFIG); default: built-in demo config")
	sharedKey := fs.String("shared-key", getenv("FAKEMESH_SHARED_KEY"), "MESH shared key, overrides the config (env FAKEMESH_SHARED_KEY)")
	authMode := fs.String("auth", getenv("FAKEMESH_AUTH"), "authentication: full (HMAC, 2h window, replay refused) or none (env FAKEMESH_AUTH)")
	expiryEvery := fs.Duration("expiry-interval", time.Minute, "how often uncollected messages are expired (code 14 reports)")
	var mailboxes, patients repeated
	fs.Var(&mailboxes, "mailbox", "add or replace a mailbox, ID:PASSWORD[:ODS] (repeatable)")
	fs.Var(&patients, "patient", "add or replace a patient for GPPROVIDER routing, NHS:YYYYMMDD:SURNAME:MAILBOX (repeatable; MAILBOX may be empty)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway fakemesh [flags]\n\nRuns a local fake NHS MESH API (see meshbridge/fakemesh/example-config.yaml).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("fakemesh flags: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("fakemesh: unexpected arguments %q", fs.Args())
	}

	cfg := fakemesh.DefaultConfig()
	if *configPath != "" {
		loaded, err := fakemesh.LoadConfigFile(*configPath)
		if err != nil {
			return fmt.Errorf("fakemesh: %w", err)
		}
		cfg = loaded
	}
	if *sharedKey != "" {
		cfg.SharedKey = *sharedKey
	}
	if *authMode != "" {
		cfg.AuthMode = *authMode
	}
	for i, spec := range mailboxes {
		mb, err := parseMailboxFlag(spec)
		if err != nil {
			return fmt.Errorf("fakemesh --mailbox #%d: %w", i+1, err)
		}
		cfg.Mailboxes = upsertMailbox(cfg.Mailboxes, mb)
	}
	for i, spec := range patients {
		p, err := parsePatientFlag(spec)
		if err != nil {
			// The value carries patient data: report only its position.
			return fmt.Errorf("fakemesh --patient #%d: %w", i+1, err)
		}
		cfg.Patients = upsertPatient(cfg.Patients, p)
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.Logger = logger.With("component", "fakemesh")

	srv, err := fakemesh.New(cfg)
	if err != nil {
		return fmt.Errorf("fakemesh: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("fakemesh listen: %w", err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	mode := cfg.AuthMode
	if mode == "" {
		mode = fakemesh.AuthFull
	}
	logger.Info("fakemesh listening", "addr", ln.Addr().String(), "auth", mode, "mailboxes", srv.MailboxIDs())
	fmt.Fprintf(stdout, "fakemesh listening on http://%s (mailboxes: %s)\n", ln.Addr(), strings.Join(srv.MailboxIDs(), ", "))

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	ticker := time.NewTicker(max(*expiryEvery, time.Second))
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			srv.ExpireUncollected()
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("fakemesh serve: %w", err)
		case <-ctx.Done():
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := httpSrv.Shutdown(shutdownCtx)
			cancel()
			logger.Info("fakemesh stopped")
			if err != nil {
				return fmt.Errorf("fakemesh shutdown: %w", err)
			}
			return nil
		}
	}
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func parseMailboxFlag(spec string) (fakemesh.Mailbox, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return fakemesh.Mailbox{}, errors.New("want ID:PASSWORD[:ODS]")
	}
	mb := fakemesh.Mailbox{ID: strings.ToUpper(parts[0]), Password: parts[1], Name: strings.ToUpper(parts[0])}
	if len(parts) == 3 {
		mb.ODSCode = parts[2]
	}
	return mb, nil
}

func parsePatientFlag(spec string) (fakemesh.Patient, error) {
	parts := strings.Split(spec, ":")
	if len(parts) != 4 || parts[0] == "" || len(parts[1]) != 8 || parts[2] == "" {
		return fakemesh.Patient{}, errors.New("want NHS:YYYYMMDD:SURNAME:MAILBOX")
	}
	return fakemesh.Patient{NHSNumber: parts[0], BirthDate: parts[1], Surname: parts[2], Mailbox: strings.ToUpper(parts[3])}, nil
}

func upsertMailbox(list []fakemesh.Mailbox, mb fakemesh.Mailbox) []fakemesh.Mailbox {
	for i := range list {
		if strings.EqualFold(list[i].ID, mb.ID) {
			list[i] = mb
			return list
		}
	}
	return append(list, mb)
}

func upsertPatient(list []fakemesh.Patient, p fakemesh.Patient) []fakemesh.Patient {
	for i := range list {
		if list[i].NHSNumber == p.NHSNumber {
			list[i] = p
			return list
		}
	}
	return append(list, p)
}
