package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
)

// Sender durably queues an accepted submission. When Send returns nil the
// submission survives any crash that follows.
type Sender interface {
	Send(ctx context.Context, a domain.Accepted) error
}

// TokenVerifier checks a request's bearer token where no JWT authorizer
// stands in front of the receiver (a function URL, ingest=url).
//
// Verify takes the Authorization header's value, the token bare or after
// "Bearer ", and checks it as API Gateway's JWT authorizer does: the
// signature against the issuer's published keys, iss, aud (or client_id),
// exp, nbf and iat. It returns the token's claims as that authorizer
// passes them to a function, a map of strings, so that the receiver reads
// the voter from them the same way either way. An error wrapping
// ErrInvalidToken means the token itself is refused (missing, malformed,
// expired, for another audience, badly signed); its text says why without
// repeating the token and may be shown to the client. Any other error means
// the token could not be checked (the issuer's keys could not be fetched):
// not the client's fault, and the request may be retried. Safe for
// concurrent use.
type TokenVerifier interface {
	Verify(ctx context.Context, authorization string) (map[string]string, error)
}

// ErrInvalidToken is wrapped by a TokenVerifier's error for a token it
// refuses.
var ErrInvalidToken = errors.New("invalid token")

// Receiver handles POST /votes: it validates and sanitises a submission,
// queues it, and answers 202 only once it is queued.
type Receiver struct {
	catalog domain.Catalog
	queue   Sender
	tokens  TokenVerifier // nil: an authorizer in front, or none at all
	log     *slog.Logger
	now     func() time.Time
}

// NewReceiver builds the receiver.
func NewReceiver(catalog domain.Catalog, queue Sender, log *slog.Logger) *Receiver {
	return &Receiver{catalog: catalog, queue: queue, log: log, now: time.Now}
}

// VerifyingTokens makes the receiver verify each request's token itself
// with tokens, and take the voter from its sub claim: for a receiver that
// no JWT authorizer guards (ingest=url with auth=jwt). It returns r.
func (r *Receiver) VerifyingTokens(tokens TokenVerifier) *Receiver {
	r.tokens = tokens
	return r
}

type acceptedBody struct {
	SubmissionID string   `json:"submissionId"`
	VoteIDs      []string `json:"voteIds"`
}

// Handle is the Lambda handler for POST /votes, behind the HTTP API's route
// or the function's URL. A function URL's event is the HTTP API's payload
// format 2.0 with the route key "$default" and no authorizer, so the one
// type decodes both.
func (r *Receiver) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if !throughFunctionURL(req) {
		return r.handle(ctx, req), nil
	}
	// No API Gateway logs this request: the receiver writes its access
	// log line itself.
	start := time.Now()
	resp := r.handle(ctx, req)
	r.logAccess(ctx, req, resp, time.Since(start))
	return resp, nil
}

// throughFunctionURL tells a request that came through the function's URL,
// which takes every path and method, from one an HTTP API route chose:
// Lambda sets the route key of a function URL's event to "$default", a
// route this project's HTTP API never has.
func throughFunctionURL(req events.APIGatewayV2HTTPRequest) bool {
	return req.RouteKey == "$default"
}

func (r *Receiver) handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	if throughFunctionURL(req) && req.RawPath != "/votes" {
		return errorResponse(&domain.Error{Code: CodeNotFound, Message: "no route for " + req.RequestContext.HTTP.Method + " " + req.RawPath + "; votes go to POST /votes"})
	}
	if throughFunctionURL(req) && req.RequestContext.HTTP.Method == http.MethodOptions {
		// A CORS preflight. Lambda answers it from the URL's CORS
		// configuration and adds those headers to every answer; should one
		// reach the function all the same, a 204 carries them, and without
		// CORS configured it allows nothing.
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNoContent, Headers: map[string]string{"allow": http.MethodPost}}
	}
	if req.RequestContext.HTTP.Method != http.MethodPost {
		return methodNotAllowed(http.MethodPost)
	}
	// Behind a JWT authorizer the token names the voter, and nothing else
	// may: a token without a usable subject is refused, never taken as
	// leave to use the body's voterId. Without one in front, the receiver
	// verifies the token itself, when told to.
	subject, hasJWT := jwtSubject(req)
	if r.tokens != nil {
		claims, err := r.tokens.Verify(ctx, header(req.Headers, "authorization"))
		switch {
		case errors.Is(err, ErrInvalidToken):
			return tokenRefused(err)
		case err != nil:
			r.log.ErrorContext(ctx, "verify token", "err", err)
			return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "the token cannot be checked right now; retry with the same Idempotency-Key"})
		}
		subject, hasJWT = claims["sub"], true
	}
	if hasJWT {
		if _, err := domain.VoterKey(subject); err != nil {
			return unauthorized(err)
		}
	}
	if !isJSON(header(req.Headers, "content-type")) {
		return errorResponse(&domain.Error{Code: CodeUnsupportedMediaType, Message: "Content-Type must be application/json", Field: "Content-Type"})
	}
	body, derr := requestBody(req)
	if derr != nil {
		return errorResponse(derr)
	}
	// A header sent empty is a key given wrong, not a key left out: taking it
	// as none would make a client's retries separate submissions.
	submissionID, keyGiven := lookupHeader(req.Headers, "idempotency-key")
	if !keyGiven {
		submissionID = newSubmissionID()
	} else if !domain.ValidIdempotencyKey(submissionID) {
		return errorResponse(&domain.Error{Code: domain.CodeInvalidField, Message: "Idempotency-Key must be 1 to 64 of A-Za-z0-9_-", Field: "Idempotency-Key"})
	}
	sub, err := domain.DecodeSubmission(body, r.catalog, subject)
	if err != nil {
		return errorResponse(clientError(err))
	}
	accepted := sub.Accept(submissionID, r.now())
	if err := r.queue.Send(ctx, accepted); err != nil {
		r.log.ErrorContext(ctx, "queue submission", "submission", submissionID, "err", err)
		return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "votes cannot be taken right now; retry with the same Idempotency-Key"})
	}
	return jsonResponse(http.StatusAccepted, acceptedBody{SubmissionID: submissionID, VoteIDs: accepted.VoteIDs()})
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// maxEncodedDecodedLen bounds base64.DecodedLen of a body within
// domain.MaxBodyBytes: DecodedLen counts whole 3-byte groups, padding
// included, so it may exceed the decoded length by up to 2.
const maxEncodedDecodedLen = domain.MaxBodyBytes + 3

// requestBody returns the raw body, decoding base64 where API Gateway
// encoded it, and refuses one over domain.MaxBodyBytes before decoding it.
func requestBody(req events.APIGatewayV2HTTPRequest) ([]byte, *domain.Error) {
	if !req.IsBase64Encoded {
		if len(req.Body) > domain.MaxBodyBytes {
			return nil, domain.BodyTooLarge()
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > maxEncodedDecodedLen {
		return nil, domain.BodyTooLarge()
	}
	b, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, &domain.Error{Code: domain.CodeInvalidJSON, Message: "body is not valid base64"}
	}
	if len(b) > domain.MaxBodyBytes {
		return nil, domain.BodyTooLarge()
	}
	return b, nil
}

// jwtSubject is the JWT authorizer's sub claim as API Gateway passes it,
// and whether the request came through a JWT authorizer at all. Only a
// route without one leaves the voter to the body.
func jwtSubject(req events.APIGatewayV2HTTPRequest) (string, bool) {
	if req.RequestContext.Authorizer == nil || req.RequestContext.Authorizer.JWT == nil {
		return "", false
	}
	return req.RequestContext.Authorizer.JWT.Claims["sub"], true
}

// unauthorized is a 401 for a token API Gateway let through but whose
// subject cannot name a voter. The subject itself is never echoed.
func unauthorized(err error) events.APIGatewayV2HTTPResponse {
	de := &domain.Error{Code: domain.CodeUnauthorized, Message: "the token names no usable subject"}
	errors.As(err, &de)
	resp := errorResponse(de)
	resp.Headers["www-authenticate"] = `Bearer error="invalid_token"`
	return resp
}

// tokenRefused is the receiver's 401 for a token it verified itself and
// refused, in the API's error shape, with why in www-authenticate as API
// Gateway's authorizer gives it. The token is never echoed.
func tokenRefused(err error) events.APIGatewayV2HTTPResponse {
	reason := strings.ReplaceAll(err.Error(), `"`, "'")
	resp := errorResponse(&domain.Error{Code: domain.CodeUnauthorized, Message: "the token is refused: " + reason})
	resp.Headers["www-authenticate"] = `Bearer error="invalid_token", error_description="` + reason + `"`
	return resp
}

// logAccess writes the access log line of a request no API Gateway saw,
// with the fields of the HTTP API's access log that the event carries: no
// token, claim or voter ID.
func (r *Receiver) logAccess(ctx context.Context, req events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("requestId", req.RequestContext.RequestID),
		slog.String("requestTime", req.RequestContext.Time),
		slog.String("sourceIp", req.RequestContext.HTTP.SourceIP),
		slog.String("userAgent", req.RequestContext.HTTP.UserAgent),
		slog.String("method", req.RequestContext.HTTP.Method),
		slog.String("path", req.RawPath),
		slog.Int("status", resp.StatusCode),
		slog.Int64("latencyMs", took.Milliseconds()),
		slog.Int("responseLength", len(resp.Body)),
	}
	if resp.StatusCode >= 400 {
		var eb errorBody
		if json.Unmarshal([]byte(resp.Body), &eb) == nil {
			attrs = append(attrs, slog.String("error", eb.Error.Code))
		}
		if _, desc, ok := strings.Cut(resp.Headers["www-authenticate"], `error_description="`); ok {
			attrs = append(attrs, slog.String("authError", strings.TrimSuffix(desc, `"`)))
		}
	}
	r.log.LogAttrs(ctx, slog.LevelInfo, "access", attrs...)
}

// header finds a header whatever its case; API Gateway lower-cases them.
func header(h map[string]string, name string) string {
	v, _ := lookupHeader(h, name)
	return v
}

// lookupHeader is header, also reporting whether the header was sent at
// all, empty or not.
func lookupHeader(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return strings.TrimSpace(v), true
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func newSubmissionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
