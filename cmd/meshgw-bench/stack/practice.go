package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshgateway/gateway/meshbridge"
)

// InboxBundle is one DATA message in a practice inbox and the ITK3 Bundle
// identifier its payload carries.
type InboxBundle struct {
	MeshMessageID string
	BundleID      string
}

// PracticeBundles downloads (without acknowledging) every DATA message in
// mailbox's inbox as that mailbox would, through the MESH API, and extracts
// each payload's Bundle.identifier. maxMessages bounds the walk.
func (s *Stack) PracticeBundles(ctx context.Context, mailbox string, maxMessages int) ([]InboxBundle, error) {
	client, err := meshbridge.New(meshbridge.Config{
		BaseURL: s.FakeMeshURL, MailboxID: mailbox, Password: Password, SharedKey: SharedKey,
		ClientName: "meshgw-bench", ClientVersion: "0", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, fmt.Errorf("stack.PracticeBundles: meshbridge.New: %w", err)
	}
	var ids []string
	err = client.InboxAll(ctx, meshbridge.InboxOptions{MaxResults: 5000}, func(page []string) error {
		ids = append(ids, page...)
		if len(ids) > maxMessages {
			return fmt.Errorf("more than %d messages", maxMessages)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("stack.PracticeBundles: inbox: %w", err)
	}
	out := make([]InboxBundle, 0, len(ids))
	var buf bytes.Buffer
	for _, id := range ids {
		buf.Reset()
		md, err := client.Download(ctx, id, &buf)
		if err != nil {
			return out, fmt.Errorf("stack.PracticeBundles: download %s: %w", id, err)
		}
		if md.MessageType == "REPORT" {
			continue
		}
		bid, err := BundleIdentifier(buf.Bytes())
		if err != nil {
			return out, fmt.Errorf("stack.PracticeBundles: message %s: %w", id, err)
		}
		out = append(out, InboxBundle{MeshMessageID: id, BundleID: bid})
	}
	return out, nil
}

// BundleIdentifier reads Bundle.identifier.value from an ITK3 message in
// FHIR XML or JSON.
func BundleIdentifier(payload []byte) (string, error) {
	trimmed := bytes.TrimLeft(payload, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var b struct {
			ResourceType string `json:"resourceType"`
			Identifier   struct {
				Value string `json:"value"`
			} `json:"identifier"`
		}
		if err := json.Unmarshal(trimmed, &b); err != nil {
			return "", fmt.Errorf("stack.BundleIdentifier: json: %w", err)
		}
		if b.ResourceType != "Bundle" || b.Identifier.Value == "" {
			return "", errors.New("stack.BundleIdentifier: no Bundle.identifier.value")
		}
		return b.Identifier.Value, nil
	}
	// XML: <Bundle><identifier><value value="..."/></identifier>… at depth 1/2/3.
	dec := xml.NewDecoder(bytes.NewReader(trimmed))
	depth := 0
	inIdentifier := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("stack.BundleIdentifier: xml: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local != "Bundle":
				return "", fmt.Errorf("stack.BundleIdentifier: root element %q", t.Name.Local)
			case depth == 2 && t.Name.Local == "identifier":
				inIdentifier = true
			case depth == 3 && inIdentifier && t.Name.Local == "value":
				for _, a := range t.Attr {
					if a.Name.Local == "value" && a.Value != "" {
						return a.Value, nil
					}
				}
			}
		case xml.EndElement:
			if depth == 2 {
				inIdentifier = false
			}
			depth--
		}
	}
	return "", errors.New("stack.BundleIdentifier: no Bundle.identifier.value")
}
