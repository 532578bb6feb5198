// Command gateway is MESH Gateway: it accepts clinical documents over HTTP,
// wraps them in ITK3 GP Connect Send Document messages and sends them through
// NHS MESH, tracking every acknowledgement. Subcommands: serve (default),
// fakemesh, mesh, itk.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// @title                       MESH Gateway API
// @version                     1.0
// @description                 Send a clinical document (usually a PDF) into a patient's GP record: the gateway wraps it in a
// @description                 GP Connect Send Document ITK3 message, sends it through NHS MESH to the patient's registered
// @description                 practice, and reports every state and acknowledgement by polling or signed webhooks.
// @description                 Authenticate every request with a short-lived JWT signed with your registered key
// @description                 (RS512; iss = sub = your client id; aud = this gateway; exp at most 5 minutes ahead; unique jti).
// @description                 In the embedded demo, GET /demo/token returns a fresh one.
// @BasePath                    /
// @securityDefinitions.apikey  BearerAuth
// @in                          header
// @name                        Authorization
// @description                 "Bearer " followed by your signed JWT.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(exitCode(err))
	}
}

// run is the whole program, callable from tests with a fake environment.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stdout, stderr)
	case "fakemesh":
		return runFakeMesh(ctx, args, getenv, stdout, stderr)
	case "mesh":
		return runMesh(ctx, args, getenv, stdin, stdout, stderr)
	case "itk":
		return runITK(ctx, args, getenv, stdin, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

const usage = `usage: gateway [command] [flags]

commands:
  serve      run the HTTP gateway (default); with no configuration it runs an
             embedded demo: in-process Redis-compatible store, local MESH server,
             simulated GP practice and a demo client token
  fakemesh   run the local MESH server on its own (--addr 127.0.0.1:8700)
  mesh       MESH operator tools: handshake | send | inbox | download | ack | track | lookup | workflows
  itk        ITK3 tools: build | validate | address
`

// exitStatus lets a subcommand choose the process exit code (e.g. itk validate → 1 when invalid).
type exitStatus interface{ ExitCode() int }

func exitCode(err error) int {
	if e, ok := err.(exitStatus); ok {
		return e.ExitCode()
	}
	return 1
}
