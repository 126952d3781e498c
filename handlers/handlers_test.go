package handlers_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"votes/domain"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
	"votes/infra/functions"
	"votes/infra/queue"
	"votes/internal/kumotest"
)

// fixture is one stage's tables and queues in the shared emulator, and the
// configuration the functions are built from.
type fixture struct {
	clients awscfg.Clients
	cfg     functions.Config
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	stage := kumotest.Stage(t)
	clients := kumotest.Clients(t, nil)
	tables := dynamo.TablesFor(stage)
	for _, spec := range tables.Specs() {
		if _, err := clients.DynamoDB.CreateTable(ctx, spec.CreateInput()); err != nil {
			t.Fatalf("create table %s: %v", spec.Name, err)
		}
	}
	names := queue.NamesFor(stage)
	url := func(name string) string {
		out, err := clients.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name)})
		if err != nil {
			t.Fatalf("create queue %s: %v", name, err)
		}
		return aws.ToString(out.QueueUrl)
	}
	return fixture{
		clients: clients,
		cfg: functions.Config{
			Tables:            tables,
			SubmissionsURL:    url(names.Submissions),
			DeadLettersURL:    url(names.DeadLetters),
			FailuresURL:       url(names.ProjectorFailed),
			RepairFailedURL:   url(names.RepairFailed),
			RepairMaxReceives: 3,
			Catalog:           domain.DefaultCatalog(),
			Concurrency:       4,
		},
	}
}

// missingQueueURL is the URL a queue of the stage would have, had it been
// created.
func (f fixture) missingQueueURL(t *testing.T) string {
	return kumotest.URL() + "/000000000000/votes-" + kumotest.Stage(t) + "-missing"
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// loadEvent reads a captured Lambda event from testdata into v.
func loadEvent(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func apiRequest(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var req events.APIGatewayV2HTTPRequest
	loadEvent(t, name, &req)
	return req
}

// drain receives every message on the queue, with its attributes.
func drain(t *testing.T, f fixture, url string) []sqstypes.Message {
	t.Helper()
	var out []sqstypes.Message
	for {
		res, err := f.clients.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl:              aws.String(url),
			MaxNumberOfMessages:   10,
			WaitTimeSeconds:       0,
			VisibilityTimeout:     60,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			t.Fatalf("receive from %s: %v", url, err)
		}
		if len(res.Messages) == 0 {
			return out
		}
		out = append(out, res.Messages...)
	}
}

// attr is a message's string attribute.
func attr(m sqstypes.Message, name string) string {
	return aws.ToString(m.MessageAttributes[name].StringValue)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// errorOf checks that resp is a JSON error answer with status and a
// message a person can read, and returns its body.
func errorOf(t *testing.T, resp events.APIGatewayV2HTTPResponse, status int) errorBody {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status %d, want %d: %s", resp.StatusCode, status, resp.Body)
	}
	var eb errorBody
	decodeBody(t, resp, &eb)
	if eb.Error.Message == "" {
		t.Errorf("error %+v has no message", eb.Error)
	}
	return eb
}

// decodeBody checks the response is JSON and decodes it into v.
func decodeBody(t *testing.T, resp events.APIGatewayV2HTTPResponse, v any) {
	t.Helper()
	if ct := resp.Headers["content-type"]; ct != "application/json" {
		t.Errorf("content-type %q, want application/json", ct)
	}
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("response body %s: %v", resp.Body, err)
	}
}
