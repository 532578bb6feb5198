package app

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gin-gonic/gin"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/auth"
	"github.com/meshgateway/gateway/config"
	"github.com/meshgateway/gateway/internal/redisconn"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/practice"
	"github.com/meshgateway/gateway/registry"
)

// Demo identities, printed on startup and used in the README quick start.
const (
	DemoClientID      = "demo-app"
	DemoKeyID         = "demo-key-1"
	DemoSenderMailbox = "X26ABC1"
	DemoSenderODS     = "X26"
	DemoAudience      = "https://mesh-gateway.local"
)

// demo is the embedded, self-contained gateway: an in-process Redis-compatible
// store (miniredis: NOT durable), the local MESH server with demo practices
// and patients, simulated practices answering ITK3 acks, and a demo client.
type demo struct {
	log       *slog.Logger
	redis     *miniredis.Miniredis
	rdb       redis.UniversalClient
	mesh      *fakemesh.Server
	meshSrv   *http.Server
	meshURL   string
	registry  *registry.Registry
	key       *rsa.PrivateKey
	practices []*practice.Practice
	closeOnce sync.Once
	out       io.Writer
}

// DemoInfo tells tests and the banner how to use the demo.
type DemoInfo struct {
	MeshURL  string
	Mesh     *fakemesh.Server
	ClientID string
	Audience string
	// Token mints a fresh signed JWT for the demo client.
	Token func() (string, error)
}

func startDemo(ctx context.Context, cfg *config.Config, log *slog.Logger, out io.Writer) (*demo, error) {
	if out == nil {
		out = io.Discard
	}
	d := &demo{log: log, out: out}
	d.redis = miniredis.NewMiniRedis()
	if err := d.redis.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("miniredis.StartAddr: %w", err)
	}
	d.rdb = redis.NewClient(&redis.Options{Addr: d.redis.Addr(), PoolSize: redisconn.DefaultPoolSize})
	log.Warn("EMBEDDED DEMO: using an in-process Redis-compatible store that is NOT durable; set REDIS_URL and MESH_URL for real use")

	meshCfg := fakemesh.DefaultConfig()
	meshCfg.Logger = log.With("component", "fakemesh")
	srv, err := fakemesh.New(meshCfg)
	if err != nil {
		d.close()
		return nil, fmt.Errorf("fakemesh.New: %w", err)
	}
	d.mesh = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.close()
		return nil, fmt.Errorf("net.Listen fakemesh: %w", err)
	}
	d.meshURL = "http://" + ln.Addr().String()
	d.meshSrv = &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.meshSrv.Serve(ln) }()
	log.Info("embedded local MESH server", "url", d.meshURL)

	key, jwks, err := auth.GenerateDemoKey()
	if err != nil {
		d.close()
		return nil, fmt.Errorf("auth.GenerateDemoKey: %w", err)
	}
	d.key = key
	jwksWithKid, err := withKid(jwks, DemoKeyID)
	if err != nil {
		d.close()
		return nil, err
	}
	d.registry, err = demoRegistry(d.meshURL, meshCfg, jwksWithKid, cfg.DemoWebhookURL)
	if err != nil {
		d.close()
		return nil, err
	}

	// The simulated practices answer on their own mailboxes.
	for _, mb := range meshCfg.Mailboxes {
		if !strings.HasPrefix(mb.ID, "X26GP") {
			continue
		}
		c, err := meshbridge.New(meshbridge.Config{BaseURL: d.meshURL, MailboxID: mb.ID, Password: mb.Password,
			SharedKey: meshCfg.SharedKey, ClientName: "simulated-practice", ClientVersion: Version})
		if err != nil {
			d.close()
			return nil, fmt.Errorf("meshbridge.New practice: %w", err)
		}
		d.practices = append(d.practices, practice.New(c, practice.Config{
			ODSCode: mb.ODSCode, Name: mb.Name, Interval: time.Second, BusAckDelay: 2 * time.Second,
			BusinessCodes: map[string]string{"9000000017": "30003"}, // JONES: no longer registered here
			Logger:        log.With("component", "practice", "practice_mailbox", mb.ID),
		}))
	}
	return d, nil
}

// withKid sets the kid of the single demo key in a JWKS.
func withKid(jwks json.RawMessage, kid string) (json.RawMessage, error) {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil || len(set.Keys) == 0 {
		return nil, fmt.Errorf("demo JWKS: %w", errors.Join(err, errors.New("no keys")))
	}
	for _, k := range set.Keys {
		k["kid"] = kid
	}
	return json.Marshal(set)
}

func demoRegistry(meshURL string, meshCfg fakemesh.Config, jwks json.RawMessage, webhookURL string) (*registry.Registry, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "audience: %s\nmesh:\n  url: %s\n  sharedKey: %q\nmailboxes:\n", DemoAudience, meshURL, meshCfg.SharedKey)
	for _, mb := range meshCfg.Mailboxes {
		if mb.ID == DemoSenderMailbox {
			fmt.Fprintf(&b, "  - id: %s\n    password: %q\n    odsCode: %s\n", mb.ID, mb.Password, mb.ODSCode)
		}
	}
	fmt.Fprintf(&b, "clients:\n  - id: %s\n    name: Demo clinical app\n    jwks: '%s'\n    algorithms: [RS512]\n    mailboxes: [%s]\n    odsCodes: [%s]\n",
		DemoClientID, string(jwks), DemoSenderMailbox, DemoSenderODS)
	if webhookURL != "" {
		fmt.Fprintf(&b, "    allowPrivateWebhook: true\n    webhook:\n      url: %s\n      secret: %s\n", webhookURL, demoWebhookSecret)
	}
	reg, err := registry.Parse([]byte(b.String()), func(string) string { return "" })
	if err != nil {
		return nil, fmt.Errorf("demo registry: %w", err)
	}
	return reg, nil
}

// demoWebhookSecret signs demo webhooks; printed in the banner so a newcomer can verify them.
const demoWebhookSecret = "whsec_ZGVtby13ZWJob29rLXNlY3JldC1ub3QtZm9yLXJlYWwtdXNl"

func (d *demo) token() (string, error) {
	return auth.SignToken(d.key, DemoKeyID, "RS512", DemoClientID, DemoAudience, 5*time.Minute, time.Now())
}

func (d *demo) info() *DemoInfo {
	return &DemoInfo{MeshURL: d.meshURL, Mesh: d.mesh, ClientID: DemoClientID, Audience: DemoAudience, Token: d.token}
}

// tuning shortens intervals so a newcomer sees the whole life of a document
// within seconds (MESH's 5-minute inbox rule applies to the real service).
func (d *demo) tuning(t Tuning) Tuning {
	if t.InboxInterval == 0 {
		t.InboxInterval = 2 * time.Second
	}
	if t.TrackSchedule == nil {
		t.TrackSchedule = []time.Duration{2 * time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute}
	}
	if t.SendBackoff == nil {
		t.SendBackoff = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second}
	}
	if t.OverdueScan == 0 {
		t.OverdueScan = 5 * time.Second
	}
	if t.WorkerPoll == 0 {
		t.WorkerPoll = 200 * time.Millisecond
	}
	return t
}

// routes adds GET /demo/token: a fresh demo JWT per call (tokens are
// single-use and live 5 minutes, like the NHS platform's).
func (d *demo) routes(r *gin.Engine) {
	r.GET("/demo/token", func(c *gin.Context) {
		tok, err := d.token()
		if err != nil {
			c.String(http.StatusInternalServerError, "could not sign a demo token\n")
			return
		}
		c.String(http.StatusOK, tok)
	})
}

func (d *demo) practicesRun(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range d.practices {
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Run(ctx) }()
	}
	wg.Wait()
	return nil
}

func (d *demo) printBanner(apiURL string) {
	tok, _ := d.token()
	w := d.out
	fmt.Fprintf(w, `
==================================================================================
 MESH Gateway — embedded demo (NOT durable: in-process store, local MESH server)
==================================================================================
 API            %[1]s        Swagger UI  %[1]s/swagger/index.html
 Local MESH     %[2]s   (demo practices X26GP001, X26GP002)
 Demo client    %[3]s   sends as mailbox %[4]s (ODS %[5]s)

 A bearer token (single use, valid 5 minutes):
 %[6]s

 Each request needs a fresh token:  curl -s %[1]s/demo/token

 Send a PDF to demo patient SMITH (NHS 9000000009, born 1967-01-26):
 curl -s %[1]s/v1/documents \
   -H "Authorization: Bearer $(curl -s %[1]s/demo/token)" \
   -F 'metadata={"patient":{"nhsNumber":"9000000009","birthDate":"1967-01-26","name":{"family":"Smith","given":["Jane"]}},"sender":{"odsCode":"X26","name":"Demo Clinic","mailbox":"X26ABC1"},"author":{"practitioner":{"sdsUserId":"123456789012","name":{"family":"Jones","given":["Sam"]}}},"careSetting":{"type":{"code":"789718008","display":"Cardiology service"}},"documents":[{"title":"Consultation summary","type":{"code":"371531000","display":"Report of clinical encounter"},"contentType":"application/pdf"}]};type=application/json' \
   -F 'file=@summary.pdf;type=application/pdf'

 Then watch it: curl -s %[1]s/v1/messages/<id> -H "Authorization: Bearer $(curl -s %[1]s/demo/token)"
 accepted → sent → delivered → inf_acked → bus_acked (patient JONES 9000000017: 30003; TAYLOR 9000000033: EPL-151)
==================================================================================
`, apiURL, d.meshURL, DemoClientID, DemoSenderMailbox, DemoSenderODS, tok)
}

func (d *demo) close() {
	d.closeOnce.Do(func() {
		if d.meshSrv != nil {
			_ = d.meshSrv.Close()
		}
		if d.rdb != nil {
			_ = d.rdb.Close()
		}
		if d.redis != nil {
			d.redis.Close()
		}
	})
}
