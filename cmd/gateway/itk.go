package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/meshgateway/gateway/itk"
)

const itkUsage = `usage: gateway itk <command> [flags]

commands:
  build [--format xml|json] [--metadata FILE|-] < request.json > message
        build an ITK3 Send Document message from a SendRequest JSON (documents[].data
        is base64); --metadata writes the MESH metadata JSON to FILE (- = stderr).
        The metadata carries patient data (mex-To, mex-Subject): it is never printed
        unless asked for.
  validate [--format xml|json] FILE|-
        print the OperationOutcome JSON (every problem, with ITK3 response codes);
        exit status 1 when the message is invalid
  address [--format xml|json] FILE|-
        print the MESH metadata JSON derived from a valid message; exit status 1
        (and the OperationOutcome on stderr) when it is invalid
  ack FILE|-
        read an ITK3 response (ITK008M) and print it as JSON
`

// maxITKInput bounds what the CLI reads: MESH's own chunked limit is 100 MB
// and base64 in a SendRequest adds a third.
const maxITKInput = 200 << 20

// itkUsageError is a command-line mistake (exit status 2).
type itkUsageError struct{ msg string }

func (e itkUsageError) Error() string { return "itk: " + e.msg + "\n\n" + itkUsage }
func (e itkUsageError) ExitCode() int { return 2 }

// itkInvalidError reports an invalid message (exit status 1); the details
// are already on stdout/stderr as an OperationOutcome.
type itkInvalidError struct{ code string }

func (e itkInvalidError) Error() string {
	return "itk: the message is invalid (a receiver would answer ITK3 " + e.code + ")"
}
func (e itkInvalidError) ExitCode() int { return 1 }

func runITK(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return itkUsageError{"missing command"}
	}
	cmd, args := args[0], args[1:]
	c := &itkCLI{stdin: stdin, stdout: stdout, stderr: stderr}
	switch cmd {
	case "help", "-h", "--help":
		_, err := fmt.Fprint(stdout, itkUsage)
		return err
	case "build":
		return c.build(args)
	case "validate":
		return c.validate(args, false)
	case "address":
		return c.validate(args, true)
	case "ack":
		return c.ack(args)
	default:
		return itkUsageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

type itkCLI struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// parseITKArgs parses flags placed before or after the positional arguments.
func parseITKArgs(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	pos, err := interleavedArgs(fs, args)
	if err != nil {
		return nil, itkUsageError{fs.Name() + ": " + err.Error()}
	}
	if len(pos) != want {
		return nil, itkUsageError{fmt.Sprintf("%s takes %d argument(s)", fs.Name(), want)}
	}
	return pos, nil
}

func parseFormatFlag(s string) (itk.Format, error) {
	switch f := itk.Format(strings.ToLower(s)); f {
	case "", itk.FormatXML, itk.FormatJSON:
		return f, nil
	}
	return "", itkUsageError{"--format must be xml or json"}
}

// readInput reads FILE, or stdin for "-", up to maxITKInput bytes.
func (c *itkCLI) readInput(name string) ([]byte, error) {
	var r io.Reader = c.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, fmt.Errorf("itk: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxITKInput+1))
	if err != nil {
		return nil, fmt.Errorf("itk: read input: %w", err)
	}
	if len(data) > maxITKInput {
		return nil, fmt.Errorf("itk: input is larger than %d bytes", maxITKInput)
	}
	return data, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (c *itkCLI) build(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	format := fs.String("format", "", "xml or json (default: the request's format, else xml)")
	metadataOut := fs.String("metadata", "", "write the MESH metadata JSON to this file (- = stderr)")
	if _, err := parseITKArgs(fs, args, 0); err != nil {
		return err
	}
	f, err := parseFormatFlag(*format)
	if err != nil {
		return err
	}
	data, err := c.readInput("-")
	if err != nil {
		return err
	}
	var req itk.SendRequest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		// json errors name fields and offsets, not values.
		return fmt.Errorf("itk build: request JSON: %w", err)
	}
	if dec.More() {
		return errors.New("itk build: request JSON: unexpected data after the request object")
	}
	if f != "" {
		req.Format = f
	}
	msg, err := itk.Build(&req, itk.BuildOptions{})
	if err != nil {
		return fmt.Errorf("itk build: %w", err)
	}
	out := bufio.NewWriterSize(c.stdout, 64<<10)
	if err := msg.Encode(out); err != nil {
		return fmt.Errorf("itk build: %w", err)
	}
	if err := out.Flush(); err != nil {
		return fmt.Errorf("itk build: write: %w", err)
	}
	switch *metadataOut {
	case "":
		return nil
	case "-":
		return writeJSON(c.stderr, msg.Metadata)
	default:
		var buf bytes.Buffer
		if err := writeJSON(&buf, msg.Metadata); err != nil {
			return err
		}
		// 0600: the metadata carries patient data.
		if err := os.WriteFile(*metadataOut, buf.Bytes(), 0o600); err != nil {
			return fmt.Errorf("itk build: metadata: %w", err)
		}
		return nil
	}
}

func (c *itkCLI) validate(args []string, address bool) error {
	name := "validate"
	if address {
		name = "address"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	format := fs.String("format", "", "xml or json (default: sniffed)")
	pos, err := parseITKArgs(fs, args, 1)
	if err != nil {
		return err
	}
	f, err := parseFormatFlag(*format)
	if err != nil {
		return err
	}
	data, err := c.readInput(pos[0])
	if err != nil {
		return err
	}
	r := itk.Validate(data, f)
	switch {
	case !address:
		if err := writeJSON(c.stdout, r.Outcome); err != nil {
			return err
		}
	case r.Valid:
		return writeJSON(c.stdout, r.Metadata)
	default:
		if err := writeJSON(c.stderr, r.Outcome); err != nil {
			return err
		}
	}
	if !r.Valid {
		return itkInvalidError{r.InfAckCode}
	}
	return nil
}

func (c *itkCLI) ack(args []string) error {
	pos, err := parseITKArgs(flag.NewFlagSet("ack", flag.ContinueOnError), args, 1)
	if err != nil {
		return err
	}
	data, err := c.readInput(pos[0])
	if err != nil {
		return err
	}
	a, err := itk.ParseAck(data)
	if err != nil {
		return err
	}
	return writeJSON(c.stdout, a)
}
