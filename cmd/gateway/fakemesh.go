package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder: helper B replaces this file.
func runFakeMesh(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("fakemesh: not built yet")
}
