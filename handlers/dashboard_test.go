package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"votes/infra/functions"
	"votes/web"
)

func TestDashboardFilesComeWithTheirPolicy(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	q := functions.Query(f.cfg, f.clients.DynamoDB, discard())
	get := func(path string) (int, map[string]string, string) {
		req := listRequest(t, nil, nil)
		req.RawPath, req.RequestContext.HTTP.Path = path, path
		req.RouteKey, req.RequestContext.RouteKey = "GET /assets/{proxy+}", "GET /assets/{proxy+}"
		if path == "/" {
			req.RouteKey, req.RequestContext.RouteKey = "GET /", "GET /"
		}
		resp, err := q.Handle(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Headers, resp.Body
	}
	status, h, body := get("/")
	if status != http.StatusOK || !strings.HasPrefix(h["content-type"], "text/html") || h["content-security-policy"] != web.CSP ||
		!strings.Contains(body, `data-aspects="overall story acting visuals soundtrack"`) {
		t.Fatalf("GET /: %d %v\n%.300s", status, h, body)
	}
	if strings.Contains(web.CSP, "unsafe") || strings.Contains(web.CSP, "http") || !strings.Contains(web.CSP, "default-src 'none'") {
		t.Errorf("policy %q allows more than the deployment's own files", web.CSP)
	}
	for _, path := range []string{"/assets/app.js", "/assets/app.css", "/assets/vendor/uPlot.iife.min.js", "/assets/vendor/uPlot.LICENSE"} {
		if status, h, body := get(path); status != http.StatusOK || h["content-security-policy"] != web.CSP || h["x-content-type-options"] != "nosniff" || len(body) == 0 {
			t.Errorf("GET %s: %d %v", path, status, h)
		}
	}
	for _, path := range []string{"/assets/../web.go", "/assets/index.html", "/assets/missing.js", "/assets/"} {
		if status, _, _ := get(path); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, status)
		}
	}
	// The page loads nothing from elsewhere.
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("the page names another origin:\n%s", body)
	}
}
