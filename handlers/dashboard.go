package handlers

import (
	"bytes"
	"html"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/web"
)

// dashboard answers GET / with the dashboard's page, which names the
// catalog's aspects, and GET /assets/{file} with its scripts, styles and
// licences, each under the dashboard's Content-Security-Policy.
func (q *Query) dashboard(req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, bool) {
	path := req.RawPath
	if path == "/" {
		page := bytes.Replace(web.Index(), []byte("<body>"),
			[]byte(`<body data-aspects="`+html.EscapeString(strings.Join(q.catalog.AspectNames(), " "))+`">`), 1)
		return pageResponse(page, "text/html; charset=utf-8", "no-cache"), true
	}
	name, ok := strings.CutPrefix(path, "/assets/")
	if !ok {
		return events.APIGatewayV2HTTPResponse{}, false
	}
	body, ct, found := web.Asset(name)
	if !found {
		return errorResponse(&domain.Error{Code: CodeNotFound, Message: "no dashboard file " + name}), true
	}
	return pageResponse(body, ct, "public, max-age=300"), true
}

func pageResponse(body []byte, contentType, cache string) events.APIGatewayV2HTTPResponse {
	return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: string(body), Headers: map[string]string{
		"content-type":            contentType,
		"cache-control":           cache,
		"content-security-policy": web.CSP,
		"x-content-type-options":  "nosniff",
		"referrer-policy":         "no-referrer",
	}}
}
