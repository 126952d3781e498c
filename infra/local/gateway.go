package local

import (
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// maxGatewayBody is what the local gateway reads of a body; API Gateway
// takes up to 10 MB and the receiver itself refuses over 16 KiB.
const maxGatewayBody = 1 << 20

// Route sends requests for a method and path pattern (Go 1.22 ServeMux
// syntax, "{name}" for a path parameter) to a function, with the route key
// API Gateway would use.
type Route struct {
	Pattern  string // e.g. "GET /titles/{titleId}/tallies"
	RouteKey string
	Params   []string
	Function *Function
}

// Gateway plays the HTTP API: it turns each request into an
// events.APIGatewayV2HTTPRequest (payload format 2.0), invokes the route's
// function, and writes its events.APIGatewayV2HTTPResponse back.
func Gateway(routes []Route, requests *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes {
		mux.HandleFunc(r.Pattern, func(w http.ResponseWriter, req *http.Request) {
			requests.Add(1)
			serveRoute(w, req, r)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"message":"Not Found"}`)
	})
	return mux
}

func serveRoute(w http.ResponseWriter, req *http.Request, r Route) {
	body, err := io.ReadAll(io.LimitReader(req.Body, maxGatewayBody+1))
	if err != nil || len(body) > maxGatewayBody {
		http.Error(w, `{"message":"Request Entity Too Large"}`, http.StatusRequestEntityTooLarge)
		return
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       r.RouteKey,
		RawPath:        req.URL.Path,
		RawQueryString: req.URL.RawQuery,
		Headers:        map[string]string{},
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
				SourceIP:  strings.Split(req.RemoteAddr, ":")[0],
				UserAgent: req.UserAgent(),
			},
		},
	}
	for name, values := range req.Header {
		ev.Headers[strings.ToLower(name)] = strings.Join(values, ",")
	}
	if len(r.Params) > 0 {
		ev.PathParameters = map[string]string{}
		for _, p := range r.Params {
			ev.PathParameters[p] = req.PathValue(p)
		}
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
		}
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := r.Function.Invoke(req.Context(), ev, &resp); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"message":"Internal Server Error"}`)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	out := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
			out = b
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}
