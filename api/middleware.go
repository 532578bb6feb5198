package api

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
)

const (
	callerKey    = "mesh-gateway.caller"
	requestIDKey = "mesh-gateway.request-id"
)

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID takes a well-formed X-Request-ID from the caller or makes one,
// and echoes it so callers can quote it to operators.
func (s *server) requestID(c *gin.Context) {
	id := c.GetHeader("X-Request-ID")
	if !requestIDPattern.MatchString(id) {
		id = uuid.NewString()
	}
	c.Set(requestIDKey, id)
	c.Header("X-Request-ID", id)
	c.Next()
}

func requestID(c *gin.Context) string { return c.GetString(requestIDKey) }

// accessLog logs method, route template, status and latency. The route
// template (not the raw path) keeps ids and any patient data out of logs.
func (s *server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	s.log.InfoContext(c.Request.Context(), "http request",
		"request_id", requestID(c), "method", c.Request.Method, "route", route,
		"status", c.Writer.Status(), "duration_ms", time.Since(start).Milliseconds(),
		"client_id", clientIDOf(c))
}

// recover turns a panic into a 500 (problem+json, or an OperationOutcome on
// FHIR routes) without leaking request data.
func (s *server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.ErrorContext(c.Request.Context(), "panic in handler", "request_id", requestID(c), "panic", v)
			c.Abort()
			if !c.Writer.Written() {
				s.writeError(c, internalError(errors.New("panic in handler")))
			}
		}
	}()
	c.Next()
}

// authenticate verifies the caller's signed JWT and applies the per-client limit.
func (s *server) authenticate(c *gin.Context) {
	caller, err := s.Auth.Authenticate(c.Request.Context(), c.GetHeader("Authorization"))
	if err != nil {
		var ae *AuthError
		if !errors.As(err, &ae) {
			_ = c.Error(&Error{Status: http.StatusServiceUnavailable, Code: "auth_unavailable", Title: "Authentication unavailable",
				Detail: "The gateway could not verify the token right now; retry shortly.", Err: err})
			c.Abort()
			return
		}
		e := &Error{Status: ae.Status, Code: "invalid_request", Title: "Authentication failed", Detail: ae.Description, Err: err,
			Verbatim: true} // the NHS platform's text, exactly, on FHIR routes too
		if ae.Status == http.StatusUnauthorized {
			e.Header = http.Header{"WWW-Authenticate": {`Bearer realm="mesh-gateway"`}}
		}
		_ = c.Error(e)
		c.Abort()
		return
	}
	c.Set(callerKey, caller)
	if s.Limiter != nil {
		if ok, retry := s.Limiter.Allow(caller.ClientID); !ok {
			secs := int(retry.Seconds() + 0.999)
			if secs < 1 {
				secs = 1
			}
			_ = c.Error(&Error{Status: http.StatusTooManyRequests, Code: "rate_limited", Title: "Too many requests",
				Detail: "This client has exceeded its request rate; retry after the time in Retry-After.",
				Header: http.Header{"Retry-After": {strconv.Itoa(secs)}}})
			c.Abort()
			return
		}
	}
	c.Next()
}

func callerOf(c *gin.Context) *Caller {
	v, _ := c.Get(callerKey)
	caller, _ := v.(*Caller)
	return caller
}

func clientIDOf(c *gin.Context) string {
	if caller := callerOf(c); caller != nil {
		return caller.ClientID
	}
	return ""
}

func (s *server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz checks every dependency (Redis, ...) with a short deadline.
func (s *server) readyz(c *gin.Context) {
	checks := gin.H{}
	status := http.StatusOK
	for _, rc := range s.Ready {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		err := rc.Check(ctx)
		cancel()
		if err != nil {
			status = http.StatusServiceUnavailable
			checks[rc.Name] = "unavailable"
			s.log.WarnContext(c.Request.Context(), "readiness check failed", "check", rc.Name, "error", err)
			continue
		}
		checks[rc.Name] = "ok"
	}
	word := "ready"
	if status != http.StatusOK {
		word = "not ready"
	}
	c.JSON(status, gin.H{"status": word, "checks": checks})
}
