package lambdaenv

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"votes/domain"
	"votes/infra/functions"
)

// deployed is the environment serverless.yml gives every function (the
// processor's retry limits included).
var deployed = map[string]string{
	"VOTES_EVENTS_TABLE":                "votes-prod-events",
	"VOTES_BALLOTS_TABLE":               "votes-prod-ballots",
	"VOTES_TALLIES_TABLE":               "votes-prod-tallies",
	"VOTES_TITLES_TABLE":                "votes-prod-titles",
	"VOTES_SUBMISSIONS_QUEUE_URL":       "https://sqs/submissions",
	"VOTES_DEAD_LETTER_QUEUE_URL":       "https://sqs/submissions-dlq",
	"VOTES_PROJECTOR_FAILURE_QUEUE_URL": "https://sqs/projector-failures",
	"VOTES_REPAIR_FAILED_QUEUE_URL":     "https://sqs/repair-failed",
	"VOTES_CATALOG":                     "overall=up|down;story=up|down",
	"VOTES_REPAIR_MAX_RECEIVES":         "5",
	"VOTES_RETRY_FAILING_FOR":           "15m",
	"VOTES_RETRY_NEWER_SCHEMA_FOR":      "1h",
}

// setenv sets the deployed environment with changes, where "" unsets a
// variable (Lambda gives an unset variable as empty too).
func setenv(t *testing.T, changes map[string]string) {
	t.Helper()
	for _, k := range []string{"VOTES_CONCURRENCY", "VOTES_AWS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	for k, v := range deployed {
		t.Setenv(k, v)
	}
	for k, v := range changes {
		t.Setenv(k, v)
	}
}

func TestConfigReadsTheDeployedEnvironment(t *testing.T) {
	setenv(t, map[string]string{"VOTES_CONCURRENCY": "8", "VOTES_RETRY_FAILING_FOR": "90s"})
	for _, name := range functions.Names() {
		c, err := Config(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.Tables.Events != "votes-prod-events" || c.Tables.Ballots != "votes-prod-ballots" || c.Tables.Tallies != "votes-prod-tallies" {
			t.Errorf("%s: tables %+v", name, c.Tables)
		}
		if c.SubmissionsURL != "https://sqs/submissions" || c.DeadLettersURL != "https://sqs/submissions-dlq" ||
			c.FailuresURL != "https://sqs/projector-failures" || c.RepairFailedURL != "https://sqs/repair-failed" {
			t.Errorf("%s: queue URLs %q %q %q %q", name, c.SubmissionsURL, c.DeadLettersURL, c.FailuresURL, c.RepairFailedURL)
		}
		if c.Concurrency != 8 || c.Retry.Failing != 90*time.Second || c.Retry.NewerSchema != time.Hour || c.RepairMaxReceives != 5 {
			t.Errorf("%s: concurrency %d, retry %+v, repair max receives %d", name, c.Concurrency, c.Retry, c.RepairMaxReceives)
		}
		if got := c.Catalog.Aspects(); len(got) != 2 || got[0].Name != "overall" || got[1].Name != "story" {
			t.Errorf("%s: catalog aspects %+v", name, got)
		}
	}
}

// TestConfigDefaults: what the environment leaves out is
// functions.DefaultConfig, not a second copy of it.
func TestConfigDefaults(t *testing.T) {
	setenv(t, map[string]string{"VOTES_CATALOG": "", "VOTES_REPAIR_MAX_RECEIVES": "", "VOTES_RETRY_FAILING_FOR": "", "VOTES_RETRY_NEWER_SCHEMA_FOR": ""})
	c, err := Config(functions.RepairerName)
	if err != nil {
		t.Fatal(err)
	}
	def := functions.DefaultConfig()
	if c.Concurrency != def.Concurrency || c.Retry != def.Retry || c.RepairMaxReceives != def.RepairMaxReceives || c.Reads != def.Reads {
		t.Errorf("got concurrency %d, retry %+v, repair max receives %d, reads %+v; want the defaults %+v", c.Concurrency, c.Retry, c.RepairMaxReceives, c.Reads, def)
	}
	if got, want := c.Catalog.Aspects(), domain.DefaultCatalog().Aspects(); len(got) != len(want) {
		t.Errorf("catalog %+v, want the default %+v", got, want)
	}
}

// TestConfigRefusesBadValues: a malformed or out-of-range value stops the
// function at start-up, naming the variable and the value, instead of
// running on the default.
func TestConfigRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		function    string
	}{
		{"VOTES_CONCURRENCY", "abc", functions.ProcessorName},
		{"VOTES_CONCURRENCY", "0", functions.ProjectorName},
		{"VOTES_CONCURRENCY", "-3", functions.RepairerName},
		{"VOTES_CONCURRENCY", "1.5", functions.ReceiverName},
		{"VOTES_RETRY_FAILING_FOR", "-1s", functions.ProcessorName},
		{"VOTES_RETRY_FAILING_FOR", "15", functions.ProcessorName},
		{"VOTES_RETRY_NEWER_SCHEMA_FOR", "0s", functions.ProcessorName},
		{"VOTES_RETRY_NEWER_SCHEMA_FOR", "an hour", functions.QueryName},
		{"VOTES_REPAIR_MAX_RECEIVES", "five", functions.RepairerName},
		{"VOTES_REPAIR_MAX_RECEIVES", "0", functions.RepairerName},
		{"VOTES_CATALOG", "overall", functions.ReceiverName},
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			setenv(t, map[string]string{tc.name: tc.value})
			_, err := Config(tc.function)
			if err == nil {
				t.Fatalf("%s=%q accepted", tc.name, tc.value)
			}
			if want := tc.name + `="` + tc.value + `"`; !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			if !strings.HasPrefix(err.Error(), tc.function+": ") {
				t.Errorf("error %q does not name the function %s", err, tc.function)
			}
		})
	}
}

// TestConfigHoldsEachFunctionToWhatItUses: a missing table or queue URL
// stops the functions that use it, and only those.
func TestConfigHoldsEachFunctionToWhatItUses(t *testing.T) {
	for _, tc := range []struct {
		unset   string
		refused []string // the others start
	}{
		{"VOTES_EVENTS_TABLE", []string{functions.ProcessorName}},
		{"VOTES_BALLOTS_TABLE", []string{functions.ProjectorName, functions.RepairerName}},
		{"VOTES_TALLIES_TABLE", []string{functions.ProjectorName, functions.QueryName, functions.RepairerName, functions.RankerName}},
		{"VOTES_TITLES_TABLE", []string{functions.ProjectorName, functions.QueryName, functions.RepairerName, functions.RankerName}},
		{"VOTES_SUBMISSIONS_QUEUE_URL", []string{functions.ReceiverName}},
		{"VOTES_DEAD_LETTER_QUEUE_URL", []string{functions.ProcessorName}},
		{"VOTES_PROJECTOR_FAILURE_QUEUE_URL", []string{functions.ProjectorName}},
		{"VOTES_REPAIR_FAILED_QUEUE_URL", []string{functions.RepairerName}},
	} {
		t.Run(tc.unset, func(t *testing.T) {
			setenv(t, map[string]string{tc.unset: ""})
			for _, name := range functions.Names() {
				_, err := Config(name)
				switch refused := slices.Contains(tc.refused, name); {
				case refused && err == nil:
					t.Errorf("%s starts without %s", name, tc.unset)
				case refused && !strings.Contains(err.Error(), "is required"):
					t.Errorf("%s: %v, want what is required", name, err)
				case !refused && err != nil:
					t.Errorf("%s does not use %s but is refused: %v", name, tc.unset, err)
				}
			}
		})
	}
}

// TestConfigReportsEveryProblemAtOnce: an operator fixing a deployment
// sees every problem in one failed start, not one per deploy.
func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	setenv(t, map[string]string{
		"VOTES_CONCURRENCY":           "abc",
		"VOTES_RETRY_FAILING_FOR":     "-1s",
		"VOTES_EVENTS_TABLE":          "",
		"VOTES_DEAD_LETTER_QUEUE_URL": "",
	})
	_, err := Config(functions.ProcessorName)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`VOTES_CONCURRENCY="abc"`, `VOTES_RETRY_FAILING_FOR="-1s"`, "events table is required", "dead-letter queue URL is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %s:\n%v", want, err)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 4 {
		t.Errorf("%d lines, want one per problem:\n%v", n, err)
	}
}

func TestConfigRefusesAnUnknownFunction(t *testing.T) {
	setenv(t, nil)
	if _, err := Config("reciever"); !errors.Is(err, functions.ErrUnknownFunction) {
		t.Errorf("got %v, want %v", err, functions.ErrUnknownFunction)
	}
}

// TestConfigJWT: behind a function URL with auth=jwt the receiver is given
// the issuer and audience it verifies tokens against; an incomplete or
// plain-http pair stops it at start-up rather than letting it take the
// body's voterId on trust.
func TestConfigJWT(t *testing.T) {
	setenv(t, map[string]string{"VOTES_JWT_ISSUER": "https://id.example.com/", "VOTES_JWT_AUDIENCE": "votes-api"})
	c, err := Config(functions.ReceiverName)
	if err != nil || c.JWT != (functions.JWT{Issuer: "https://id.example.com/", Audience: "votes-api"}) {
		t.Fatalf("config %+v, %v", c.JWT, err)
	}
	for _, env := range []map[string]string{
		{"VOTES_JWT_ISSUER": "https://id.example.com/", "VOTES_JWT_AUDIENCE": ""},
		{"VOTES_JWT_ISSUER": "", "VOTES_JWT_AUDIENCE": "votes-api"},
		{"VOTES_JWT_ISSUER": "http://id.example.com/", "VOTES_JWT_AUDIENCE": "votes-api"},
	} {
		setenv(t, env)
		if _, err := Config(functions.ReceiverName); err == nil || !strings.Contains(err.Error(), "jwt") {
			t.Errorf("%v: %v, want a jwt configuration error", env, err)
		}
	}
}
