package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder: helper A replaces this file.
func runMesh(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("mesh: not built yet")
}
