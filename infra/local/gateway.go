package local

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/handlers"
)

// GatewayLimits bound what one client can hold of the local gateway: a
// connection, a goroutine and at most the body limit plus one byte of
// memory, and only for so long.
type GatewayLimits struct {
	// ReadHeaderTimeout is how long a client has to send the request line
	// and headers; it stops a client trickling headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a client has to send the whole request, body
	// included: a body sent slowly, or shorter than its Content-Length, is
	// cut off at it.
	ReadTimeout time.Duration
	// WriteTimeout runs from the end of the headers to the end of the
	// response, so it must cover reading the body and the function's own
	// timeout.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends nothing.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes int
	// MaxConns bounds the connections open at once; past it, new ones
	// wait in the listen backlog until one closes. The gateway shares its
	// process, and file descriptors, with the emulator.
	MaxConns int
}

// DefaultGatewayLimits are sized for a body of at most domain.MaxBodyBytes
// and functions with API Gateway's 30 s integration timeout at most:
//   - 5 s for headers and 10 s for a whole request: 16 KiB takes
//     milliseconds on any link a voter uses, so 10 s is generous and still
//     frees a slow-body connection quickly;
//   - 30 s to write: API Gateway's HTTP API integration timeout, longer
//     than the read timeout plus the receiver's and query's 10 s;
//   - 30 s idle: long enough for a client's next request to reuse the
//     connection, short enough that idle connections do not pile up;
//   - 10 KiB of headers: the HTTP API quota for the request line and
//     headers together;
//   - 512 connections: far above what a developer or votes load (32 by
//     default) opens, far below the file descriptors the process has.
func DefaultGatewayLimits() GatewayLimits {
	return GatewayLimits{
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    10 << 10,
		MaxConns:          512,
	}
}

// withDefaults fills the limits left zero with the defaults.
func (l GatewayLimits) withDefaults() GatewayLimits {
	d := DefaultGatewayLimits()
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = d.ReadTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = d.IdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

// serve runs an http.Server for the gateway on ln under these limits.
func (l GatewayLimits) serve(h http.Handler, ln net.Listener) (*http.Server, func() error) {
	l = l.withDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
	limited := &limitListener{Listener: ln, slots: make(chan struct{}, l.MaxConns), closed: make(chan struct{})}
	return srv, func() error { return srv.Serve(limited) }
}

// limitListener accepts a connection only while fewer than cap(slots) are
// open.
type limitListener struct {
	net.Listener
	slots     chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.closed:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// limitConn gives its slot back once, when closed.
type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Route sends requests for a method and path pattern (Go 1.22 ServeMux
// syntax, "{name}" for a path parameter) to a function, with the route key
// API Gateway would use.
type Route struct {
	Pattern  string // e.g. "GET /titles/{titleId}/tallies"
	RouteKey string
	Params   []string
	Function *Function
	// Authorizer, when set, must accept a request before the function is
	// invoked, as a JWT authorizer attached to the route in serverless.yml.
	Authorizer *Authorizer
	// FunctionURL plays the function's own URL instead of an HTTP API
	// route (ingest=url): the function gets a function URL's event, route
	// key "$default" and no authorizer, and its failure is Lambda's 502.
	FunctionURL bool
}

// Gateway plays the HTTP API: it turns each request into an
// events.APIGatewayV2HTTPRequest (payload format 2.0), invokes the route's
// function, and writes its events.APIGatewayV2HTTPResponse back. What it
// answers itself (no route, a method the path has no route for, a body
// over domain.MaxBodyBytes, a body that does not arrive in time) takes the
// API's documented error shape.
func Gateway(routes []Route, requests *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	methods := map[string][]string{} // path -> methods routed; "" for any
	for _, r := range routes {
		method, path, ok := strings.Cut(r.Pattern, " ")
		if !ok {
			method, path = "", r.Pattern
		}
		methods[path] = append(methods[path], method)
		mux.HandleFunc(r.Pattern, func(w http.ResponseWriter, req *http.Request) {
			requests.Add(1)
			serveRoute(w, req, r)
		})
	}
	for path, ms := range methods {
		if slices.Contains(ms, "") {
			continue
		}
		allow := strings.Join(ms, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, handlers.CodeMethodNotAllowed, "method not allowed; use "+allow)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no route for "+req.Method+" "+req.URL.Path)
	})
	return mux
}

// The gateway's own answers, which the functions never see:
// codeRequestTimeout for a body that did not arrive within the read
// timeout, codeNotFound for a path no route serves.
const (
	codeRequestTimeout = "request_timeout"
	codeNotFound       = "not_found"
)

func serveRoute(w http.ResponseWriter, req *http.Request, r Route) {
	body, ok := readBody(w, req)
	if !ok {
		return
	}
	if r.FunctionURL {
		serveFunctionURL(w, req, r.Function, body)
		return
	}
	ev := apiEvent(req, r, body)
	if r.Authorizer != nil {
		jwt, reason := r.Authorizer.Authorize(req.Header.Get("Authorization"))
		if jwt == nil {
			unauthorized(w, reason)
			return
		}
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{JWT: jwt}
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := r.Function.Invoke(req.Context(), ev, &resp); err != nil {
		// API Gateway's own answer when the integration fails.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"message":"Internal Server Error"}`)
		return
	}
	writeResponse(w, resp.StatusCode, resp.Headers, resp.Body, resp.IsBase64Encoded)
}

// readBody reads the request's body, or answers the client itself and
// returns false. An oversize body is refused on its Content-Length alone,
// or after the limit plus one byte; no more of it is buffered. Past the
// answer, net/http discards up to 256 KiB of what the client still sends
// (no memory kept, still under the read timeout) so that the client reads
// the 413 rather than a connection reset, and closes the connection after
// the answer when more is coming.
func readBody(w http.ResponseWriter, req *http.Request) ([]byte, bool) {
	if req.ContentLength > domain.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, domain.CodeBodyTooLarge, bodyTooLarge)
		return nil, false
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, domain.MaxBodyBytes+1))
	switch {
	case err != nil:
		// The read deadline passed, or the client went away, with the body
		// short of its length.
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, codeRequestTimeout, "the request body did not arrive in time")
		return nil, false
	case len(body) > domain.MaxBodyBytes:
		writeError(w, http.StatusRequestEntityTooLarge, domain.CodeBodyTooLarge, bodyTooLarge)
		return nil, false
	}
	return body, true
}

// apiEvent is the event an HTTP API gives the route's function for req,
// as payload format 2.0 has it.
func apiEvent(req *http.Request, r Route, body []byte) events.APIGatewayV2HTTPRequest {
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       r.RouteKey,
		RawPath:        req.URL.Path,
		RawQueryString: req.URL.RawQuery,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID:  "000000000000",
			APIID:      "local",
			DomainName: req.Host,
			Stage:      "$default",
			RequestID:  req.Header.Get("X-Request-Id"),
			RouteKey:   r.RouteKey,
			Time:       time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:  time.Now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    req.Method,
				Path:      req.URL.Path,
				Protocol:  req.Proto,
				SourceIP:  sourceIP(req.RemoteAddr),
				UserAgent: req.UserAgent(),
			},
		},
		Headers: eventHeaders(req),
	}
	if q := req.URL.Query(); len(q) > 0 {
		// As API Gateway gives them: a name given twice has its values
		// joined with commas.
		ev.QueryStringParameters = make(map[string]string, len(q))
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(r.Params) > 0 {
		ev.PathParameters = map[string]string{}
		for _, p := range r.Params {
			ev.PathParameters[p] = req.PathValue(p)
		}
	}
	ev.Body, ev.IsBase64Encoded = eventBody(body)
	return ev
}

// functionURLEvent is the event Lambda gives a function through its URL:
// events.LambdaFunctionURLRequest, with the route key "$default" that
// Lambda sets as a placeholder and aws-lambda-go's type leaves out.
type functionURLEvent struct {
	events.LambdaFunctionURLRequest
	RouteKey string `json:"routeKey"`
}

// serveFunctionURL plays a function URL with AuthType NONE: no
// authorizer, every request handed to the function as a function URL's
// event (payload format 2.0), and Lambda's 502 when the function fails.
func serveFunctionURL(w http.ResponseWriter, req *http.Request, fn *Function, body []byte) {
	now := time.Now()
	ev := functionURLEvent{RouteKey: "$default", LambdaFunctionURLRequest: events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        req.URL.Path,
		RawQueryString: req.URL.RawQuery,
		Headers:        eventHeaders(req),
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "000000000000",
			RequestID:    req.Header.Get("X-Request-Id"),
			APIID:        "local",
			DomainName:   req.Host,
			DomainPrefix: "local",
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    req.Method,
				Path:      req.URL.Path,
				Protocol:  req.Proto,
				SourceIP:  sourceIP(req.RemoteAddr),
				UserAgent: req.UserAgent(),
			},
		},
	}}
	ev.Body, ev.IsBase64Encoded = eventBody(body)
	var resp events.LambdaFunctionURLResponse
	if err := fn.Invoke(req.Context(), ev, &resp); err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "Internal Server Error")
		return
	}
	writeResponse(w, resp.StatusCode, resp.Headers, resp.Body, resp.IsBase64Encoded)
}

// eventHeaders are the request's headers as API Gateway and function URLs
// give them: names lower case, repeated values joined by commas.
func eventHeaders(req *http.Request) map[string]string {
	h := make(map[string]string, len(req.Header))
	for name, values := range req.Header {
		h[strings.ToLower(name)] = strings.Join(values, ",")
	}
	return h
}

// eventBody is the body as an event carries it: text as it is, anything
// else in base64.
func eventBody(body []byte) (string, bool) {
	switch {
	case len(body) == 0:
		return "", false
	case utf8.Valid(body):
		return string(body), false
	default:
		return base64.StdEncoding.EncodeToString(body), true
	}
}

// writeResponse writes a function's response (payload format 2.0).
func writeResponse(w http.ResponseWriter, status int, headers map[string]string, body string, b64 bool) {
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	out := []byte(body)
	if b64 {
		if b, err := base64.StdEncoding.DecodeString(body); err == nil {
			out = b
		}
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

var bodyTooLarge = fmt.Sprintf("body is over %d bytes", domain.MaxBodyBytes)

// sourceIP is the client's address without its port, as API Gateway gives
// it: "::1" for "[::1]:8080", which splitting on the first colon would cut
// to "[".
func sourceIP(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	return host
}

// writeError writes the API's error shape, {"error":{"code","message"}}.
func writeError(w http.ResponseWriter, status int, code, message string) {
	body, err := json.Marshal(map[string]map[string]string{"error": {"code": code, "message": message}})
	if err != nil {
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// unauthorized is API Gateway's answer to a request its JWT authorizer
// refused: 401 {"message":"Unauthorized"}, the reason only in the
// www-authenticate header. The function is not invoked.
func unauthorized(w http.ResponseWriter, reason string) {
	w.Header().Set("Www-Authenticate", `Bearer scope="" error="invalid_token" error_description="`+reason+`"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = io.WriteString(w, `{"message":"Unauthorized"}`)
}
