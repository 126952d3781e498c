package functions

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"votes/domain"
	"votes/handlers"
	"votes/infra/dynamo"
)

// TestValidateReportsEverythingTheStackNeeds: with no function named,
// Validate holds the configuration to what all five need (the local
// stack's case), and says every missing setting at once.
func TestValidateReportsEverythingTheStackNeeds(t *testing.T) {
	c := DefaultConfig()
	c.Concurrency = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("a configuration without tables or queues accepted")
	}
	want := []string{
		"submissions queue URL is required", "events table is required", "dead-letter queue URL is required",
		"concurrency is 0", "ballots table is required", "tallies table is required", "titles table is required",
		"projector failure queue URL is required", "repair failed queue URL is required",
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not say %q:\n%v", w, err)
		}
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("%d problems, want %d, each said once:\n%v", len(lines), len(want), err)
	}

	c = DefaultConfig()
	c.Tables = dynamo.TablesFor("test")
	c.SubmissionsURL, c.DeadLettersURL, c.FailuresURL, c.RepairFailedURL = "s", "d", "f", "r"
	if err := c.Validate(); err != nil {
		t.Errorf("a complete configuration: %v", err)
	}
	c.Catalog = domain.Catalog{}
	c.Reads.MaxAge = -1
	if err := c.Validate(ProcessorName, ProjectorName, RepairerName); err != nil {
		t.Errorf("the functions that read neither the catalog nor the read limits: %v", err)
	}
	err = c.Validate(QueryName)
	if err == nil || !strings.Contains(err.Error(), "catalog is empty") || !strings.Contains(err.Error(), "read limits") {
		t.Errorf("query without a catalog and with a negative max age: %v", err)
	}
}

// TestReceiverTokens: the receiver verifies tokens itself only when told
// the issuer (behind a function URL with auth=jwt); otherwise it has no
// verifier at all, not one that refuses or accepts everything.
func TestReceiverTokens(t *testing.T) {
	c := DefaultConfig()
	if tokens, err := ReceiverTokens(c, http.DefaultClient); tokens != nil || err != nil {
		t.Errorf("without an issuer: %v %v, want no verifier", tokens, err)
	}
	c.JWT = JWT{Issuer: "https://id.example.com/", Audience: "votes-api"}
	tokens, err := ReceiverTokens(c, http.DefaultClient)
	if err != nil || tokens == nil {
		t.Fatalf("with an issuer: %v %v", tokens, err)
	}
	if _, err := tokens.Verify(context.Background(), ""); !errors.Is(err, handlers.ErrInvalidToken) {
		t.Errorf("a request without a token: %v, want an invalid token", err)
	}
}
