package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/meshgateway/gateway/app"
	"github.com/meshgateway/gateway/config"
)

// runServe starts the gateway. With no REDIS_URL, MESH_URL or GATEWAY_CONFIG
// it runs the embedded demo.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: gateway serve   (configured by environment variables; see README)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if cfg.Embedded() && cfg.Host == "" {
		cfg.Host = "127.0.0.1" // the demo has a printed token: keep it off the network
	}
	a, err := app.New(ctx, app.Options{Config: cfg, Getenv: getenv, Stdout: stdout})
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
