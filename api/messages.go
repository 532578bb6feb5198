package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/tracking"
)

// MessageList is a page of the caller's messages.
type MessageList struct {
	Messages []*tracking.Message `json:"messages"`
	Next     string              `json:"next,omitempty"` // URL of the next page
}

// getMessage godoc
// @Summary      Status of one message
// @Description  Current state, MESH message id, ITK3 identifiers, acknowledgements and the full event history.
// @Description  Only the client that sent the message can read it (404 otherwise).
// @Tags         messages
// @Produce      json
// @Security     BearerAuth
// @Param        id   path      string  true  "Tracking id from the 202 response"
// @Success      200  {object}  tracking.Message
// @Failure      401  {object}  Problem
// @Failure      404  {object}  Problem
// @Router       /v1/messages/{id} [get]
func (s *server) getMessage(c *gin.Context) {
	m, ok := s.ownedMessage(c)
	if !ok {
		return
	}
	c.JSON(http.StatusOK, m)
}

// ownedMessage loads a message and hides other clients' messages behind 404.
func (s *server) ownedMessage(c *gin.Context) (*tracking.Message, bool) {
	id := c.Param("id")
	m, err := s.Store.Get(c.Request.Context(), id)
	if errors.Is(err, tracking.ErrNotFound) || (err == nil && m.ClientID != callerOf(c).ClientID) {
		_ = c.Error(newError(http.StatusNotFound, "message_not_found", "Message not found",
			"No message with that id was sent by this client (records are kept for the retention period)."))
		return nil, false
	}
	if err != nil {
		_ = c.Error(storeError(err))
		return nil, false
	}
	return m, true
}

// listMessages godoc
// @Summary      List the caller's messages
// @Description  Newest first. `state` filters by one or more states (comma separated); `state=attention` finds the
// @Description  messages that need a person: negative acks, undeliverable, rejected, failed and overdue acks.
// @Tags         messages
// @Produce      json
// @Security     BearerAuth
// @Param        state   query     string  false  "accepted,sending,sent,delivered,inf_acked,bus_acked,rejected,undeliverable,inf_nacked,bus_nacked,failed or attention"
// @Param        since   query     string  false  "RFC 3339 time: only messages created at or after it"
// @Param        limit   query     int     false  "page size (1..200, default 50)"
// @Param        cursor  query     string  false  "from the previous page's next link"
// @Success      200     {object}  MessageList
// @Failure      400     {object}  Problem
// @Failure      401     {object}  Problem
// @Router       /v1/messages [get]
func (s *server) listMessages(c *gin.Context) {
	var f tracking.ListFilter
	var problems []FieldProblem
	if st := c.Query("state"); st != "" {
		for _, v := range strings.Split(st, ",") {
			v = strings.TrimSpace(v)
			if v == "attention" || v == "overdue" {
				f.NeedsAttention = true
				continue
			}
			if !knownState(tracking.State(v)) {
				problems = append(problems, FieldProblem{Field: "state", Message: "unknown state " + strconv.Quote(v)})
				continue
			}
			f.State = append(f.State, tracking.State(v))
		}
	}
	if since := c.Query("since"); since != "" {
		t, err := time.Parse(time.RFC3339, since)
		if err != nil {
			problems = append(problems, FieldProblem{Field: "since", Message: "must be an RFC 3339 time, e.g. 2026-11-24T09:00:00Z"})
		}
		f.Since = t
	}
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 200 {
			problems = append(problems, FieldProblem{Field: "limit", Message: "must be an integer from 1 to 200"})
		}
		f.Limit = n
	}
	f.Cursor = c.Query("cursor")
	if len(problems) > 0 {
		_ = c.Error(&Error{Status: http.StatusBadRequest, Code: "bad_query", Title: "Invalid query", Problems: problems})
		return
	}
	page, next, err := s.Store.List(c.Request.Context(), callerOf(c).ClientID, f)
	if errors.Is(err, tracking.ErrInvalidCursor) {
		_ = c.Error(&Error{Status: http.StatusBadRequest, Code: "bad_query", Title: "Invalid query",
			Problems: []FieldProblem{{Field: "cursor", Message: "is not a cursor from a previous page"}}})
		return
	}
	if err != nil {
		_ = c.Error(storeError(err))
		return
	}
	out := MessageList{Messages: page}
	if out.Messages == nil {
		out.Messages = []*tracking.Message{}
	}
	if next != "" {
		q := c.Request.URL.Query()
		q.Set("cursor", next)
		out.Next = "/v1/messages?" + q.Encode()
	}
	c.JSON(http.StatusOK, out)
}

func knownState(s tracking.State) bool {
	for _, k := range tracking.AllStates {
		if k == s {
			return true
		}
	}
	return false
}

// getDeliveries godoc
// @Summary      Webhook deliveries for a message
// @Description  Every webhook event for this message with each delivery attempt (time, HTTP status or error).
// @Tags         messages
// @Produce      json
// @Security     BearerAuth
// @Param        id   path      string  true  "Tracking id"
// @Success      200  {object}  object
// @Failure      404  {object}  Problem
// @Router       /v1/messages/{id}/deliveries [get]
func (s *server) getDeliveries(c *gin.Context) {
	if _, ok := s.ownedMessage(c); !ok {
		return
	}
	if s.Deliveries == nil {
		c.JSON(http.StatusOK, gin.H{"deliveries": []any{}})
		return
	}
	d, err := s.Deliveries.Deliveries(c.Request.Context(), c.Param("id"))
	if err != nil {
		_ = c.Error(storeError(err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"deliveries": d})
}

// replayDeliveries godoc
// @Summary      Replay webhook deliveries for a message
// @Description  Queues every webhook event of this message again, with the same webhook-id so receivers can de-duplicate.
// @Tags         messages
// @Produce      json
// @Security     BearerAuth
// @Param        id   path      string  true  "Tracking id"
// @Success      202  {object}  object
// @Failure      404  {object}  Problem
// @Router       /v1/messages/{id}/deliveries/replay [post]
func (s *server) replayDeliveries(c *gin.Context) {
	if _, ok := s.ownedMessage(c); !ok {
		return
	}
	if s.Deliveries == nil {
		_ = c.Error(newError(http.StatusConflict, "no_webhook", "No webhook configured", "This client has no webhook URL registered."))
		return
	}
	n, err := s.Deliveries.Replay(c.Request.Context(), callerOf(c).ClientID, c.Param("id"))
	if err != nil {
		_ = c.Error(storeError(err))
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"replayed": n})
}
