package fakemesh

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the fake MESH. Create it with New and serve Handler().
type Server struct {
	log       *slog.Logger
	now       func() time.Time
	sharedKey string
	authNone  bool
	inboxTTL  time.Duration
	msgTTL    time.Duration

	mailboxes    map[string]*mailboxInfo // immutable after New
	mailboxOrder []string
	workflows    map[string]*workflowInfo // immutable after New
	patients     map[string]Patient       // by NHS number; immutable after New

	replay *replayCache
	faults *faultInjector
	stats  statCounters

	mu       sync.Mutex // guards messages, inboxes, seq
	messages map[string]*message
	inboxes  map[string]*inbox
	seq      uint64

	hooksMu sync.RWMutex
	hooks   []func(MessageInfo)
}

type mailboxInfo struct {
	Mailbox
	id string // upper-case
}

type workflowInfo struct {
	id        string
	senders   map[string]bool
	receivers []string
}

// New validates cfg and builds a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{
		log:       cfg.Logger,
		now:       cfg.Now,
		sharedKey: cfg.SharedKey,
		authNone:  cfg.AuthMode == AuthNone,
		inboxTTL:  cfg.InboxExpiry,
		msgTTL:    cfg.MessageExpiry,
		mailboxes: make(map[string]*mailboxInfo, len(cfg.Mailboxes)),
		workflows: make(map[string]*workflowInfo, len(cfg.Workflows)),
		patients:  make(map[string]Patient, len(cfg.Patients)),
		messages:  make(map[string]*message),
		inboxes:   make(map[string]*inbox),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.inboxTTL <= 0 {
		s.inboxTTL = defaultInboxExpiry
	}
	if s.msgTTL <= 0 {
		s.msgTTL = defaultMessageExpiry
	}
	for _, m := range cfg.Mailboxes {
		id := strings.ToUpper(strings.TrimSpace(m.ID))
		m.ID = id
		if m.Name == "" {
			m.Name = id
		}
		s.mailboxes[id] = &mailboxInfo{Mailbox: m, id: id}
		s.mailboxOrder = append(s.mailboxOrder, id)
	}
	for _, w := range cfg.Workflows {
		wi := &workflowInfo{id: strings.TrimSpace(w.ID), senders: map[string]bool{}}
		for _, m := range w.Senders {
			wi.senders[strings.ToUpper(strings.TrimSpace(m))] = true
		}
		for _, m := range w.Receivers {
			wi.receivers = append(wi.receivers, strings.ToUpper(strings.TrimSpace(m)))
		}
		s.workflows[wi.id] = wi
	}
	for _, p := range cfg.Patients {
		p.Mailbox = strings.ToUpper(strings.TrimSpace(p.Mailbox))
		s.patients[p.NHSNumber] = p
	}
	s.replay = newReplayCache(s.now())
	s.faults = newFaultInjector(cfg.Faults)
	return s, nil
}

// MailboxIDs lists the configured mailbox ids in config order (for logs).
func (s *Server) MailboxIDs() []string { return append([]string(nil), s.mailboxOrder...) }

// OnMessage registers fn to be called whenever a DATA message has been fully
// received and delivered to a recipient inbox. fn runs synchronously on the
// sending request's goroutine: it must not block (start a goroutine for work).
func (s *Server) OnMessage(fn func(MessageInfo)) {
	s.hooksMu.Lock()
	s.hooks = append(s.hooks, fn)
	s.hooksMu.Unlock()
}

func (s *Server) notify(infos []MessageInfo) {
	if len(infos) == 0 {
		return
	}
	s.hooksMu.RLock()
	hooks := s.hooks
	s.hooksMu.RUnlock()
	for _, info := range infos {
		for _, fn := range hooks {
			fn(info)
		}
	}
}

// Handler serves the MESH API, the health/ping routes and the test-only admin routes.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// route identifies an endpoint for stats and fault injection.
type route int

const (
	routeUnknown route = iota
	routeHandshake
	routeInbox
	routeDownload
	routeDownloadChunk
	routeHead
	routeAck
	routeCount
	routeSend
	routeSendChunk
	routeTracking
	routeTrackingLocalID
	routeEndpointLookup
	routeWorkflowSearch
	routePing
	routeAdmin
	numRoutes
)

var routeNames = [numRoutes]string{
	"unknown", "handshake", "inbox", "download", "download_chunk", "head", "ack", "count",
	"send", "send_chunk", "tracking", "tracking_localid", "endpointlookup", "workflowsearch", "ping", "admin",
}

// call is one parsed API request.
type call struct {
	w       *statusWriter
	r       *http.Request
	route   route
	parts   []string // path segments after /messageexchange/
	ver     int      // 1 or 2
	mailbox *mailboxInfo
}

// statusWriter records the status for Stats.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	w := &statusWriter{ResponseWriter: rw}
	c := &call{w: w, r: r}

	switch {
	case path == "/health" || path == "/_ping" || path == "/_status" || path == "/healthcheck" ||
		path == "/messageexchange/_ping" || path == "/messageexchange/deepping":
		c.route = routePing
		s.handlePing(c)
	case strings.HasPrefix(path, "/admin/") || strings.HasPrefix(path, "/messageexchange/admin/"):
		c.route = routeAdmin
		s.handleAdmin(c, strings.TrimPrefix(strings.TrimPrefix(path, "/messageexchange"), "/admin/"))
	case strings.HasPrefix(path, "/messageexchange/"):
		c.parts = strings.Split(path[len("/messageexchange/"):], "/")
		c.route = classify(r.Method, c.parts)
		if c.route == routeUnknown {
			writeNotFound(c)
			break
		}
		s.serveMESH(c)
	default:
		writeNotFound(c)
	}
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	s.stats.record(c.route, status)
}

// classify maps method + path segments to a route; routeUnknown means 404/405.
func classify(method string, p []string) route {
	n := len(p)
	if n == 0 || p[0] == "" {
		return routeUnknown
	}
	switch p[0] {
	case "endpointlookup":
		if n == 3 && method == http.MethodGet {
			return routeEndpointLookup
		}
		return routeUnknown
	case "workflowsearch":
		if n == 2 && method == http.MethodGet {
			return routeWorkflowSearch
		}
		return routeUnknown
	}
	if n == 1 {
		if method == http.MethodGet || method == http.MethodPost {
			return routeHandshake
		}
		return routeUnknown
	}
	switch p[1] {
	case "inbox":
		switch {
		case n == 2 && method == http.MethodGet:
			return routeInbox
		case n == 3 && method == http.MethodGet:
			return routeDownload
		case n == 3 && method == http.MethodHead:
			return routeHead
		case n == 4 && method == http.MethodGet:
			return routeDownloadChunk
		case n == 5 && p[3] == "status" && p[4] == "acknowledged" && method == http.MethodPut:
			return routeAck
		}
	case "count":
		if n == 2 && method == http.MethodGet {
			return routeCount
		}
	case "outbox":
		switch {
		case n == 2 && method == http.MethodPost:
			return routeSend
		case n == 3 && p[2] == "tracking" && method == http.MethodGet:
			return routeTracking
		case n == 4 && p[2] == "tracking" && method == http.MethodGet:
			return routeTrackingLocalID
		case n == 4 && method == http.MethodPost:
			return routeSendChunk
		}
	}
	return routeUnknown
}

// serveMESH runs fault injection, version negotiation and authentication,
// then the endpoint handler.
func (s *Server) serveMESH(c *call) {
	if s.faults.enabled() {
		if !s.faults.apply(c, s) {
			return
		}
	}
	s.dispatch(c)
}

// dispatch negotiates the version, authenticates and calls the handler.
func (s *Server) dispatch(c *call) {
	ver, ok := apiVersion(c.r.Header.Get("Accept"))
	if !ok {
		writeJSON(c, http.StatusBadRequest, []byte(`{"errorDescription":"Accept header api format incorrect"}`))
		return
	}
	c.ver = ver
	switch c.route {
	case routeEndpointLookup:
		s.handleEndpointLookup(c)
		return
	case routeWorkflowSearch:
		s.handleWorkflowSearch(c)
		return
	}
	if !s.authenticate(c) {
		return
	}
	switch c.route {
	case routeHandshake:
		s.handleHandshake(c)
	case routeInbox:
		s.handleInbox(c)
	case routeDownload:
		s.handleDownload(c, c.parts[2], "1", false)
	case routeDownloadChunk:
		s.handleDownload(c, c.parts[2], c.parts[3], false)
	case routeHead:
		s.handleDownload(c, c.parts[2], "1", true)
	case routeAck:
		s.handleAck(c)
	case routeCount:
		s.handleCount(c)
	case routeSend:
		s.handleSend(c)
	case routeSendChunk:
		s.handleSendChunk(c)
	case routeTracking:
		s.handleTracking(c)
	case routeTrackingLocalID:
		s.handleTrackingLocalID(c)
	}
}

// apiVersion implements MESH Accept versioning: none, application/json or
// vnd.mesh.v1 -> 1; vnd.mesh.v2 (or higher) -> 2; a malformed vnd.mesh value is an error.
func apiVersion(accept string) (int, bool) {
	if accept == "" {
		return 1, true
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, _ := strings.Cut(part, ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if !strings.HasPrefix(mt, "application/vnd.mesh") {
			continue
		}
		rest, ok := strings.CutPrefix(mt, "application/vnd.mesh.v")
		if !ok {
			return 0, false
		}
		num, ok := strings.CutSuffix(rest, "+json")
		if !ok || num == "" {
			return 0, false
		}
		v := 0
		for i := 0; i < len(num); i++ {
			if num[i] < '0' || num[i] > '9' || v > 1000 {
				return 0, false
			}
			v = v*10 + int(num[i]-'0')
		}
		if v >= 2 {
			return 2, true
		}
		return 1, true
	}
	return 1, true
}

// authenticate resolves the path mailbox and checks the NHSMESH token.
func (s *Server) authenticate(c *call) bool {
	pathMailbox := strings.ToUpper(c.parts[0])
	if s.authNone {
		mb, ok := s.mailboxes[pathMailbox]
		if !ok {
			writeError(c, http.StatusForbidden, apiError{desc: msgInvalidToken})
			return false
		}
		c.mailbox = mb
		return true
	}
	tok, ok := parseToken(c.r.Header.Get("Authorization"))
	if !ok {
		writeError(c, http.StatusForbidden, apiError{desc: msgAuthHeader})
		return false
	}
	if !strings.EqualFold(tok.MailboxID, pathMailbox) {
		writeError(c, http.StatusForbidden, apiError{desc: msgMailboxMismatch})
		return false
	}
	mb, ok := s.mailboxes[pathMailbox]
	if !ok {
		writeError(c, http.StatusForbidden, apiError{desc: msgInvalidToken})
		return false
	}
	digest, ok := tok.verify(s.sharedKey, mb.Password)
	if !ok {
		writeError(c, http.StatusForbidden, apiError{desc: msgInvalidToken})
		return false
	}
	now := s.now()
	if !tok.withinWindow(now) {
		writeError(c, http.StatusForbidden, apiError{desc: msgInvalidToken})
		return false
	}
	if s.replay.seen(digest, now) {
		writeError(c, http.StatusForbidden, apiError{desc: msgDuplicatedToken})
		return false
	}
	c.mailbox = mb
	return true
}

func (s *Server) handlePing(c *call) {
	if c.r.Method != http.MethodGet && c.r.Method != http.MethodHead {
		writeJSON(c, http.StatusMethodNotAllowed, []byte(`{"detail":"Method Not Allowed"}`))
		return
	}
	writeJSON(c, http.StatusOK, []byte(`{"status":"ok","service":"fakemesh"}`))
}

// Stats counts requests and operations, for test assertions.
type Stats struct {
	Requests    map[string]int64 // key "route status", e.g. "send 202"
	Sends       int64            // messages created (first chunk accepted)
	Chunks      int64            // chunks 2..n accepted
	Delivered   int64            // DATA messages delivered to an inbox
	Downloads   int64            // successful chunk downloads
	Acks        int64            // acknowledgements (including repeats)
	Reports     int64            // REPORT messages created
	FaultErrors int64            // injected error statuses
	FaultDrops  int64            // injected dropped connections
}

type statCounters struct {
	byRoute                                            [numRoutes][600]atomic.Int64
	sends, chunks, delivered, downloads, acks, reports atomic.Int64
	faultErrors, faultDrops                            atomic.Int64
}

func (sc *statCounters) record(r route, status int) {
	if status < 0 || status >= 600 {
		status = 0
	}
	sc.byRoute[r][status].Add(1)
}

func (sc *statCounters) reset() {
	for r := range sc.byRoute {
		for code := range sc.byRoute[r] {
			sc.byRoute[r][code].Store(0)
		}
	}
	for _, c := range []*atomic.Int64{&sc.sends, &sc.chunks, &sc.delivered, &sc.downloads, &sc.acks, &sc.reports, &sc.faultErrors, &sc.faultDrops} {
		c.Store(0)
	}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:    map[string]int64{},
		Sends:       s.stats.sends.Load(),
		Chunks:      s.stats.chunks.Load(),
		Delivered:   s.stats.delivered.Load(),
		Downloads:   s.stats.downloads.Load(),
		Acks:        s.stats.acks.Load(),
		Reports:     s.stats.reports.Load(),
		FaultErrors: s.stats.faultErrors.Load(),
		FaultDrops:  s.stats.faultDrops.Load(),
	}
	for r := route(0); r < numRoutes; r++ {
		for code := range s.stats.byRoute[r] {
			if n := s.stats.byRoute[r][code].Load(); n > 0 {
				st.Requests[fmt.Sprintf("%s %d", routeNames[r], code)] = n
			}
		}
	}
	return st
}
