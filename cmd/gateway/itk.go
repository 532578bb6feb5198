package main

import (
	"context"
	"errors"
	"io"
)

// Placeholder: the ITK helpers replace this file.
func runITK(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("itk: not built yet")
}
