// Package browser_test checks the published API documentation: the OpenAPI
// document and redirect (plain Go), and Swagger UI driven end to end in
// headless Chromium by swagger.mjs (Node + playwright-core, Debian chromium).
//
// Setup for the browser part: `apt-get install -y chromium` and `npm ci` in
// this directory. Without them the browser subtest is skipped, except under
// CI=true, where it fails.
package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgateway/gateway/app"
	"github.com/meshgateway/gateway/config"
)

// documentedOperations are the routes a client developer must find in the docs.
var documentedOperations = []struct{ method, path string }{
	{"post", "/v1/documents"},
	{"post", "/FHIR/STU3/$process-message"},
	{"get", "/v1/messages/{id}"},
	{"get", "/v1/messages"},
}

func TestAPIDocs(t *testing.T) {
	gw := startGateway(t)
	t.Run("OpenAPIDocumentAndRedirect", func(t *testing.T) { checkOpenAPIDocument(t, gw) })
	t.Run("SwaggerUIInChromium", func(t *testing.T) { checkSwaggerUI(t, gw) })
}

// startGateway runs the embedded demo gateway in-process on loopback.
func startGateway(t *testing.T) *app.App {
	t.Helper()
	getenv := func(string) string { return "" }
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	if !cfg.Embedded() {
		t.Fatal("an empty environment should select the embedded demo")
	}
	api := listenLoopback(t)
	admin := listenLoopback(t)
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := app.New(ctx, app.Options{Config: cfg, Getenv: getenv, Stdout: io.Discard, Listener: api, AdminListener: admin})
	if err != nil {
		cancel()
		_ = api.Close()
		_ = admin.Close()
		t.Fatalf("app.New: %v", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-stopped:
			if err != nil {
				t.Errorf("gateway Run: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("gateway did not shut down within 40 s")
		}
	})
	return gw
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("net.Listen: %v", err)
	}
	return ln
}

type openAPIDoc struct {
	Swagger             string                                 `json:"swagger"`
	Paths               map[string]map[string]openAPIOperation `json:"paths"`
	SecurityDefinitions map[string]struct {
		Type string `json:"type"`
		Name string `json:"name"`
		In   string `json:"in"`
	} `json:"securityDefinitions"`
	Definitions map[string]struct {
		Properties map[string]struct {
			Type   string `json:"type"`
			Format string `json:"format"`
		} `json:"properties"`
	} `json:"definitions"`
}

type openAPIOperation struct {
	Security []map[string][]string `json:"security"`
}

func checkOpenAPIDocument(t *testing.T, gw *app.App) {
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	res, body := get(t, client, gw.URL()+"/swagger/doc.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /swagger/doc.json: status %d", res.StatusCode)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("/swagger/doc.json is not JSON: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger version %q, want 2.0", doc.Swagger)
	}
	for _, op := range documentedOperations {
		t.Run(strings.ToUpper(op.method)+" "+op.path, func(t *testing.T) {
			operation, ok := doc.Paths[op.path][op.method]
			if !ok {
				t.Fatalf("OpenAPI document has no %s %s", op.method, op.path)
			}
			if !requiresScheme(operation, "BearerAuth") {
				t.Errorf("%s %s does not require BearerAuth (security %v)", op.method, op.path, operation.Security)
			}
		})
	}
	bearer, ok := doc.SecurityDefinitions["BearerAuth"]
	switch {
	case !ok:
		t.Error("OpenAPI document has no BearerAuth security definition")
	case bearer.Type != "apiKey" || bearer.In != "header" || bearer.Name != "Authorization":
		t.Errorf("BearerAuth = %+v, want an apiKey in the Authorization header", bearer)
	}

	// Document content travels as base64 in JSON; described as Go's []byte it
	// would show up in Swagger UI's example body as an array of integers.
	if data := doc.Definitions["itk.Document"].Properties["data"]; data.Type != "string" || data.Format != "byte" {
		t.Errorf("itk.Document.data is documented as type %q format %q, want a base64 string (type string, format byte)", data.Type, data.Format)
	}

	res, _ = get(t, client, gw.URL()+"/docs")
	if res.StatusCode < 300 || res.StatusCode > 399 || res.Header.Get("Location") != "/swagger/index.html" {
		t.Errorf("/docs: status %d Location %q, want a redirect to /swagger/index.html", res.StatusCode, res.Header.Get("Location"))
	}
	res, body = get(t, client, gw.URL()+"/swagger/index.html")
	if res.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("swagger-ui")) {
		t.Errorf("/swagger/index.html: status %d, Swagger UI page expected", res.StatusCode)
	}
}

func requiresScheme(op openAPIOperation, scheme string) bool {
	for _, requirement := range op.Security {
		if _, ok := requirement[scheme]; ok {
			return true
		}
	}
	return false
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return res, body
}

// swaggerSummary is the JSON line swagger.mjs prints.
type swaggerSummary struct {
	OK         bool     `json:"ok"`
	Step       string   `json:"step"`
	Error      string   `json:"error"`
	Operations []string `json:"operations"`
	Authorized string   `json:"authorized"`
	Response   struct {
		NetworkStatus int    `json:"networkStatus"`
		StatusShown   string `json:"statusShown"`
		Status        string `json:"status"`
		ID            string `json:"id"`
	} `json:"response"`
	DurationMs int `json:"durationMs"`
}

func checkSwaggerUI(t *testing.T, gw *app.App) {
	requireBrowserTools(t)

	screenshot := os.Getenv("SCREENSHOT")
	if screenshot == "" {
		screenshot = filepath.Join(os.TempDir(), "mesh-gateway-swagger-failure.png")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "swagger.mjs", gw.URL())
	cmd.Env = append(os.Environ(), "SCREENSHOT="+screenshot)
	cmd.WaitDelay = 5 * time.Second // don't hang on pipes held by a stray Chromium
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Errorf("swagger.mjs did not finish within 90 s")
		}
		t.Fatalf("node swagger.mjs: %v (a failure screenshot, if taken, is at %s)\nstdout:\n%s\nstderr:\n%s",
			err, screenshot, stdout.String(), stderr.String())
	}

	var summary swaggerSummary
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("swagger.mjs summary is not JSON: %v\nstdout:\n%s", err, stdout.String())
	}
	t.Logf("swagger.mjs: %s", lines[len(lines)-1])
	if !summary.OK || summary.Response.StatusShown != "202" || summary.Response.Status != "accepted" || summary.Response.ID == "" {
		t.Fatalf("swagger.mjs exited 0 but its summary is not a success: %s", lines[len(lines)-1])
	}
	if len(summary.Operations) != len(documentedOperations) {
		t.Errorf("swagger.mjs checked %d operations, want %d", len(summary.Operations), len(documentedOperations))
	}
	checkMessageTracked(t, gw, summary.Response.ID)
}

// checkMessageTracked confirms that the document sent through Swagger UI is
// a real tracked message, readable by its sender.
func checkMessageTracked(t *testing.T, gw *app.App, id string) {
	token, err := gw.Demo().Token()
	if err != nil {
		t.Fatalf("demo token: %v", err)
	}
	req, err := http.NewRequest(http.MethodGet, gw.URL()+"/v1/messages/"+id, nil)
	if err != nil {
		t.Fatalf("http.NewRequest: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	client := &http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/messages/{id}: %v", err)
	}
	defer res.Body.Close()
	var msg struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&msg); err != nil || res.StatusCode != http.StatusOK || msg.ID != id {
		t.Errorf("GET /v1/messages/%s: status %d, id %q, decode error %v", id, res.StatusCode, msg.ID, err)
	}
}

// requireBrowserTools skips (or fails under CI=true) when node, Chromium or
// playwright-core are missing.
func requireBrowserTools(t *testing.T) {
	t.Helper()
	chromiumPath := os.Getenv("CHROMIUM")
	if chromiumPath == "" {
		chromiumPath = "/usr/bin/chromium"
	}
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (install Node.js)")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath+" (apt-get install -y chromium)")
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "node_modules/playwright-core (run `npm ci` in test/browser)")
	}
	if len(missing) == 0 {
		return
	}
	msg := "browser check needs " + strings.Join(missing, ", ")
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " — required when CI=true")
	}
	t.Skip(msg)
}
