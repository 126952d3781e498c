package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
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

// Receiver handles POST /votes: it validates and sanitises a submission,
// queues it, and answers 202 only once it is queued.
type Receiver struct {
	catalog domain.Catalog
	queue   Sender
	log     *slog.Logger
	now     func() time.Time
}

// NewReceiver builds the receiver.
func NewReceiver(catalog domain.Catalog, queue Sender, log *slog.Logger) *Receiver {
	return &Receiver{catalog: catalog, queue: queue, log: log, now: time.Now}
}

type acceptedBody struct {
	SubmissionID string   `json:"submissionId"`
	VoteIDs      []string `json:"voteIds"`
}

// Handle is the Lambda handler for the HTTP API route POST /votes.
func (r *Receiver) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	if req.RequestContext.HTTP.Method != http.MethodPost {
		return methodNotAllowed(http.MethodPost), nil
	}
	// Behind a JWT authorizer the token names the voter, and nothing else
	// may: a token without a usable subject is refused, never taken as
	// leave to use the body's voterId.
	subject, hasJWT := jwtSubject(req)
	if hasJWT {
		if _, err := domain.VoterKey(subject); err != nil {
			return unauthorized(err), nil
		}
	}
	if !isJSON(header(req.Headers, "content-type")) {
		return errorResponse(&domain.Error{Code: CodeUnsupportedMediaType, Message: "Content-Type must be application/json", Field: "Content-Type"}), nil
	}
	body, derr := requestBody(req)
	if derr != nil {
		return errorResponse(derr), nil
	}
	// A header sent empty is a key given wrong, not a key left out: taking it
	// as none would make a client's retries separate submissions.
	submissionID, keyGiven := lookupHeader(req.Headers, "idempotency-key")
	if !keyGiven {
		submissionID = newSubmissionID()
	} else if !domain.ValidIdempotencyKey(submissionID) {
		return errorResponse(&domain.Error{Code: domain.CodeInvalidField, Message: "Idempotency-Key must be 1 to 64 of A-Za-z0-9_-", Field: "Idempotency-Key"}), nil
	}
	sub, err := domain.DecodeSubmission(body, r.catalog, subject)
	if err != nil {
		return errorResponse(clientError(err)), nil
	}
	accepted := sub.Accept(submissionID, r.now())
	if err := r.queue.Send(ctx, accepted); err != nil {
		r.log.ErrorContext(ctx, "queue submission", "submission", submissionID, "err", err)
		return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "votes cannot be taken right now; retry with the same Idempotency-Key"}), nil
	}
	return jsonResponse(http.StatusAccepted, acceptedBody{SubmissionID: submissionID, VoteIDs: accepted.VoteIDs()}), nil
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
