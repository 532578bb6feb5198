// Package api is the gateway's HTTP surface: the FHIR $process-message
// operation, the simple /v1 document API, message status and webhook
// deliveries. It depends only on small interfaces declared here.
package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/meshgateway/gateway/tracking"
)

// Caller is an authenticated client.
type Caller struct {
	ClientID string
	// MaySendAs / MayUseODS answer the client registry's authorisation.
	MaySendAs func(mailbox string) bool
	MayUseODS func(odsCode string) bool
}

// Authenticator verifies the Authorization header of a request. Failures are
// returned as *AuthError so the NHS platform's status and wording reach the caller.
type Authenticator interface {
	Authenticate(ctx context.Context, authorization string) (*Caller, error)
}

// AuthError is an authentication failure with the NHS API platform's wording.
type AuthError struct {
	Status      int
	Description string
}

func (e *AuthError) Error() string { return e.Description }

// MessageStore is the durable tracking store.
type MessageStore interface {
	Accept(ctx context.Context, msg *tracking.Message, payload io.Reader) (*tracking.Message, bool, error)
	Get(ctx context.Context, id string) (*tracking.Message, error)
	List(ctx context.Context, clientID string, f tracking.ListFilter) ([]*tracking.Message, string, error)
}

// RecipientResolver turns an ODS code into a MESH mailbox (MESH endpoint lookup).
type RecipientResolver interface {
	ResolveODS(ctx context.Context, senderMailbox, odsCode, workflowID string) (mailbox string, err error)
}

// Deliveries exposes webhook delivery attempts for a message.
type Deliveries interface {
	Deliveries(ctx context.Context, messageID string) (any, error)
	Replay(ctx context.Context, clientID, messageID string) (int, error)
}

// ReadyCheck reports whether a dependency can serve traffic.
type ReadyCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Limiter throttles a client (429 when it returns false).
type Limiter interface {
	Allow(clientID string) (ok bool, retryAfter time.Duration)
}

// Options configures the router.
type Options struct {
	Logger           *slog.Logger
	Auth             Authenticator
	Store            MessageStore
	Resolver         RecipientResolver // optional: odsCode recipients need it
	Deliveries       Deliveries        // optional: webhook delivery history
	Limiter          Limiter           // optional
	Ready            []ReadyCheck
	MaxBodyBytes     int64
	RecommendedBytes int64 // document size GP systems recommend (5 MB)
	Now              func() time.Time
	NewID            func() string
	// Middleware wraps every route (metrics, tracing); applied in order.
	Middleware []gin.HandlerFunc
	// Extra registers routes owned by other packages (Swagger UI).
	Extra func(r *gin.Engine)
	// PublicURL is the gateway's public base URL (GATEWAY_PUBLIC_URL); the
	// FHIR CapabilityStatement names its endpoints from it, or from the
	// request's host when empty.
	PublicURL string
	// Version and Started describe this build and process in the
	// CapabilityStatement.
	Version string
	Started time.Time
}

type server struct {
	Options
	log *slog.Logger
}

// NewRouter builds the gin engine with every route of the public API.
func NewRouter(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Started.IsZero() {
		o.Started = o.Now()
	}
	if o.NewID == nil {
		o.NewID = func() string { return uuid.NewString() }
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 100 << 20
	}
	if o.RecommendedBytes == 0 {
		o.RecommendedBytes = 5 << 20
	}
	s := &server{Options: o, log: o.Logger}

	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	_ = r.SetTrustedProxies(nil)
	r.Use(s.requestID, s.accessLog, s.recover)
	r.Use(o.Middleware...)
	r.Use(s.renderErrors)

	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)

	fhir := r.Group("/FHIR/STU3", fhirRoutes)
	fhir.GET("/metadata", s.capabilityStatement)
	fhir.POST("/$process-message", s.authenticate, s.processMessage)
	fhir.POST("/MessageHeader/$process-message", s.authenticate, s.processMessage)

	v1 := r.Group("/v1")
	v1.POST("/documents", s.authenticate, s.postDocument)
	v1.GET("/messages", s.authenticate, s.listMessages)
	v1.GET("/messages/:id", s.authenticate, s.getMessage)
	v1.GET("/messages/:id/deliveries", s.authenticate, s.getDeliveries)
	v1.POST("/messages/:id/deliveries/replay", s.authenticate, s.replayDeliveries)

	if o.Extra != nil {
		o.Extra(r)
	}
	r.NoRoute(func(c *gin.Context) {
		if len(c.Request.URL.Path) >= 5 && c.Request.URL.Path[:5] == "/FHIR" {
			fhirRoutes(c)
		}
		_ = c.Error(newError(http.StatusNotFound, "not_found", "Not found", "No such route: see /swagger/index.html for the API."))
	})
	r.NoMethod(func(c *gin.Context) {
		if len(c.Request.URL.Path) >= 5 && c.Request.URL.Path[:5] == "/FHIR" {
			fhirRoutes(c)
		}
		_ = c.Error(newError(http.StatusMethodNotAllowed, "method_not_allowed", "Method not allowed", "This route does not accept "+c.Request.Method+"."))
	})
	return r
}

// problemRender writes application/problem+json.
type problemRender struct{ body Problem }

func (p problemRender) Render(w http.ResponseWriter) error {
	p.WriteContentType(w)
	return json.NewEncoder(w).Encode(p.body)
}

func (p problemRender) WriteContentType(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/problem+json")
}
