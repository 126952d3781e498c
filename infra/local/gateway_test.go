package local_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/infra/local"
)

// startGateway runs a local stack on the test binary's emulator with the
// given gateway limits and authorizer.
func startGateway(t *testing.T, limits local.GatewayLimits, auth *local.Authorizer) *local.Stack {
	t.Helper()
	return startConfigured(t, local.Config{Settings: local.FastSettings(), Limits: limits, Authorizer: auth})
}

// shortLimits cut the gateway's timeouts to a fraction of a second.
func shortLimits() local.GatewayLimits {
	return local.GatewayLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond,
		WriteTimeout: 2 * time.Second, IdleTimeout: 500 * time.Millisecond}
}

// errorShape decodes the API's error shape and fails unless it is one.
func errorShape(t *testing.T, body []byte) (code, message string) {
	t.Helper()
	var out struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Error == nil || out.Error.Code == "" || out.Error.Message == "" {
		t.Fatalf("not the documented error shape: %q", body)
	}
	return out.Error.Code, out.Error.Message
}

// TestGatewayCutsOffSlowClients: a client that holds a connection by
// sending slowly, or never finishing what it announced, loses it within
// the gateway's read timeouts, and no function is invoked for it.
func TestGatewayCutsOffSlowClients(t *testing.T) {
	limits := shortLimits()
	s := startGateway(t, limits, nil)
	addr := strings.TrimPrefix(s.URL, "http://")
	head := "POST /votes HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\nContent-Length: 80\r\n\r\n"
	cases := []struct {
		name string
		send func(c net.Conn)
	}{
		{"half the body, then a stall", func(c net.Conn) { _, _ = io.WriteString(c, head+strings.Repeat("x", 40)) }},
		{"a Content-Length longer than the body", func(c net.Conn) {
			_, _ = io.WriteString(c, "POST /votes HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\nContent-Length: 16000\r\n\r\n{}")
		}},
		{"a body trickled a byte at a time", func(c net.Conn) {
			_, _ = io.WriteString(c, head)
			go func() {
				for range 80 {
					if _, err := io.WriteString(c, "x"); err != nil {
						return
					}
					time.Sleep(50 * time.Millisecond) // 4 s in all, 8 times the read timeout
				}
			}()
		}},
		{"headers never finished", func(c net.Conn) { _, _ = io.WriteString(c, "POST /votes HTTP/1.1\r\nHost: local\r\n") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Functions.Receiver.Usage().Invocations
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			tc.send(c)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, _ := io.ReadAll(c) // until the gateway closes the connection
			held := time.Since(start)
			if held > limits.ReadTimeout+time.Second {
				t.Errorf("connection held %s, read timeout %s", held, limits.ReadTimeout)
			}
			if len(resp) > 0 && !strings.HasPrefix(string(resp), "HTTP/1.1 408") && !strings.HasPrefix(string(resp), "HTTP/1.1 400") {
				t.Errorf("answer to a cut-off request: %q", resp)
			}
			if strings.HasPrefix(string(resp), "HTTP/1.1 408") {
				code, _ := errorShape(t, resp[strings.Index(string(resp), "\r\n\r\n")+4:])
				if code != "request_timeout" {
					t.Errorf("408 code %q", code)
				}
			}
			if n := s.Functions.Receiver.Usage().Invocations - before; n != 0 {
				t.Errorf("the receiver was invoked %d times for a request that never arrived", n)
			}
		})
	}
}

// TestGatewayClosesIdleConnections: a keep-alive connection that sends
// nothing after its request is closed after the idle timeout, so idle
// clients cannot pile up.
func TestGatewayClosesIdleConnections(t *testing.T) {
	limits := shortLimits()
	s := startGateway(t, limits, nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: local\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want the gateway to close it", err)
	}
	if held := time.Since(start); held > limits.IdleTimeout+time.Second {
		t.Errorf("idle connection held %s, idle timeout %s", held, limits.IdleTimeout)
	}
}

// countingReader is an endless body that counts what was read of it.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	r.n.Add(int64(len(p)))
	return len(p), nil
}

// TestGatewayRefusesOversizeBodies: a body over domain.MaxBodyBytes is a
// 413 in the documented shape, answered on its Content-Length alone when
// it has one and after at most the limit plus one byte when it does not;
// a body of exactly the limit reaches the function.
func TestGatewayRefusesOversizeBodies(t *testing.T) {
	s := startGateway(t, local.GatewayLimits{}, nil)

	t.Run("declared length", func(t *testing.T) {
		c, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The headers only: the answer must not wait for a mebibyte.
		_, _ = io.WriteString(c, "POST /votes HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n")
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer before the body: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if code, _ := errorShape(t, body); resp.StatusCode != http.StatusRequestEntityTooLarge || code != domain.CodeBodyTooLarge {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})

	t.Run("unknown length", func(t *testing.T) {
		before := s.Functions.Receiver.Usage().Invocations
		body := &countingReader{}
		req := httptest.NewRequest(http.MethodPost, "/votes", body)
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.Gateway.ServeHTTP(rec, req)
		if code, _ := errorShape(t, rec.Body.Bytes()); rec.Code != http.StatusRequestEntityTooLarge || code != domain.CodeBodyTooLarge {
			t.Errorf("got %d %s", rec.Code, rec.Body)
		}
		if n := body.n.Load(); n > domain.MaxBodyBytes+1 {
			t.Errorf("the gateway read %d bytes of the body, limit %d", n, domain.MaxBodyBytes)
		}
		if n := s.Functions.Receiver.Usage().Invocations - before; n != 0 {
			t.Errorf("the receiver was invoked %d times for an oversize body", n)
		}
	})

	t.Run("exactly the limit", func(t *testing.T) {
		before := s.Functions.Receiver.Usage().Invocations
		resp, err := http.Post(s.URL+"/votes", "application/json", strings.NewReader(strings.Repeat(" ", domain.MaxBodyBytes)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusRequestEntityTooLarge || s.Functions.Receiver.Usage().Invocations == before {
			t.Errorf("a body of exactly %d bytes: %d, receiver invoked %v", domain.MaxBodyBytes, resp.StatusCode, s.Functions.Receiver.Usage().Invocations > before)
		}
	})
}

// TestGatewayOwnAnswersTakeTheErrorShape: no route is 404, a method the
// path has no route for is 405 with Allow, both in the documented shape.
func TestGatewayOwnAnswersTakeTheErrorShape(t *testing.T) {
	s := startGateway(t, local.GatewayLimits{}, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{http.MethodGet, "/nope", http.StatusNotFound, "not_found", ""},
		{http.MethodPost, "/titles/tt1", http.StatusNotFound, "not_found", ""},
		{http.MethodPost, "/titles", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodPost, "/", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
		{http.MethodDelete, "/healthz", http.StatusMethodNotAllowed, "method_not_allowed", "GET"},
	} {
		req, _ := http.NewRequest(tc.method, s.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code, _ := errorShape(t, body)
		if resp.StatusCode != tc.status || code != tc.code || resp.Header.Get("Allow") != tc.allow ||
			!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %d %s Allow %q Content-Type %q", tc.method, tc.path, resp.StatusCode, body, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"))
		}
	}
}

// TestGatewayBoundsConnections: past MaxConns open connections, a new
// client waits until one closes, so idle connections cannot use up the
// file descriptors the emulator shares.
func TestGatewayBoundsConnections(t *testing.T) {
	limits := local.GatewayLimits{ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 10 * time.Second, MaxConns: 2}
	s := startGateway(t, limits, nil)
	addr := strings.TrimPrefix(s.URL, "http://")
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr) // the kernel's backlog takes it
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: local\r\n\r\n")
	r := bufio.NewReader(c)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := r.ReadByte(); err == nil {
		t.Fatal("a third connection was served while two were open, limit 2")
	}
	held[0].Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("once a connection closed, the waiting one got %v %v", resp, err)
	}
}

// TestGatewaySourceIP: the function sees the client's address without its
// port, for IPv6 clients as for IPv4 ones.
func TestGatewaySourceIP(t *testing.T) {
	var got atomic.Value
	fn := local.NewFunction("echo", time.Second, func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got.Store(ev.RequestContext.HTTP.SourceIP)
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
	})
	gw := local.Gateway([]local.Route{{Pattern: "GET /healthz", RouteKey: "GET /healthz", Function: fn}}, &atomic.Int64{})
	for remote, want := range map[string]string{"[::1]:51234": "::1", "[2001:db8::7]:443": "2001:db8::7", "192.0.2.1:8080": "192.0.2.1"} {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		gw.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || got.Load() != want {
			t.Errorf("remote %s: status %d, source IP %q, want %q", remote, rec.Code, got.Load(), want)
		}
	}
}

// TestGatewayQueryParameters: the function gets the query string parsed, as
// API Gateway's payload 2.0 gives it: a name given twice has its values
// joined with a comma.
func TestGatewayQueryParameters(t *testing.T) {
	var got atomic.Value
	fn := local.NewFunction("echo", time.Second, func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		got.Store(ev.QueryStringParameters)
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK}, nil
	})
	gw := local.Gateway([]local.Route{{Pattern: "GET /titles", RouteKey: "GET /titles", Function: fn}}, &atomic.Int64{})
	rec := httptest.NewRecorder()
	gw.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/titles?sort=approval&aspect=story&x=1&x=2&cursor=YQ%3D%3D", nil))
	want := map[string]string{"sort": "approval", "aspect": "story", "x": "1,2", "cursor": "YQ=="}
	if q, _ := got.Load().(map[string]string); rec.Code != http.StatusOK || !maps.Equal(q, want) {
		t.Fatalf("status %d, query %v; want %v", rec.Code, got.Load(), want)
	}
}
