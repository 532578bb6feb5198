package stack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// HTTPClient is tuned for many concurrent loopback callers.
func HTTPClient(conns int, timeout time.Duration) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns * 2,
		MaxIdleConnsPerHost: conns * 2,
		MaxConnsPerHost:     0,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Accepted is the gateway's 202 body.
type Accepted struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Post sends one POST /v1/documents with a fresh token. status is the HTTP
// status (0 on a transport error, which is then returned as err).
func (s *Stack) Post(ctx context.Context, hc *http.Client, token, contentType string, body io.Reader, idemKey string) (Accepted, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.GatewayURL+"/v1/documents", body)
	if err != nil {
		return Accepted{}, 0, fmt.Errorf("stack.Post: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", contentType)
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Accepted{}, 0, fmt.Errorf("stack.Post: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return Accepted{}, resp.StatusCode, fmt.Errorf("stack.Post: read response: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		return Accepted{}, resp.StatusCode, fmt.Errorf("stack.Post: status %d: %.300s", resp.StatusCode, data)
	}
	var a Accepted
	if err := json.Unmarshal(data, &a); err != nil || a.ID == "" {
		return Accepted{}, resp.StatusCode, fmt.Errorf("stack.Post: bad 202 body %.200q: %v", data, err)
	}
	return a, resp.StatusCode, nil
}

// Message is the part of GET /v1/messages/{id} the tools read.
type Message struct {
	ID                 string `json:"id"`
	State              string `json:"state"`
	MeshMessageID      string `json:"meshMessageId"`
	BundleID           string `json:"bundleId"`
	Attempts           int    `json:"attempts"`
	FirstChunkAttempts int    `json:"firstChunkAttempts"`
	LastError          any    `json:"lastError,omitempty"`
}

// GetMessage reads one message's tracking record.
func (s *Stack) GetMessage(ctx context.Context, hc *http.Client, id string) (Message, error) {
	var m Message
	err := s.getJSON(ctx, hc, "/v1/messages/"+url.PathEscape(id), &m)
	return m, err
}

// ListMessages pages through GET /v1/messages?state=... (bounded to maxPages).
func (s *Stack) ListMessages(ctx context.Context, hc *http.Client, states string, maxPages int) ([]Message, error) {
	var all []Message
	path := "/v1/messages?limit=200&state=" + url.QueryEscape(states)
	for range maxPages {
		var page struct {
			Messages []Message `json:"messages"`
			Next     string    `json:"next"`
		}
		if err := s.getJSON(ctx, hc, path, &page); err != nil {
			return all, err
		}
		all = append(all, page.Messages...)
		if page.Next == "" {
			return all, nil
		}
		path = page.Next
	}
	return all, fmt.Errorf("stack.ListMessages: more than %d pages", maxPages)
}

func (s *Stack) getJSON(ctx context.Context, hc *http.Client, path string, out any) error {
	tok, err := s.Caller.Token()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.GatewayURL+path, nil)
	if err != nil {
		return fmt.Errorf("stack: GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("stack: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("stack: GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stack: GET %s: status %d: %.300s", path, resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("stack: GET %s: decode: %w", path, err)
	}
	return nil
}

// SentStates are the states of a message MESH has accepted in full.
var SentStates = []string{"sent", "delivered", "inf_acked", "bus_acked", "inf_nacked", "bus_nacked"}

// MetricsSent sums the gateway's meshgw_messages{state=...} gauge over
// SentStates. ok is false when the gateway does not export that gauge.
func (s *Stack) MetricsSent(ctx context.Context, hc *http.Client) (n float64, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.AdminURL+"/metrics", nil)
	if err != nil {
		return 0, false, fmt.Errorf("stack.MetricsSent: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("stack.MetricsSent: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("stack.MetricsSent: status %d", resp.StatusCode)
	}
	want := map[string]bool{}
	for _, st := range SentStates {
		want[`state="`+st+`"`] = true
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, "meshgw_messages{")
		if !found {
			continue
		}
		labels, value, found := strings.Cut(rest, "} ")
		if !found {
			continue
		}
		ok = true
		for _, l := range strings.Split(labels, ",") {
			if want[l] {
				v, perr := strconv.ParseFloat(strings.Fields(value)[0], 64)
				if perr == nil {
					n += v
				}
			}
		}
	}
	return n, ok, sc.Err()
}
