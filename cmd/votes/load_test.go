package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"votes/domain"
	"votes/infra/local"
	"votes/internal/loadgen"
	"votes/projections"
)

// TestLoadTakesTheDeploymentsCatalog: against a stack with its own
// catalog, votes load sends that catalog's aspects and choices when told
// with --catalog, or when the running votes dev it loads declares it; left
// on the standard five it is refused, as it always was before.
func TestLoadTakesTheDeploymentsCatalog(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no votes dev running but the one this test declares
	t.Setenv("VOTES_CATALOG", "")
	spec := "plot=good|bad|meh;music=loud|soft"
	catalog, err := domain.ParseCatalog(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A stage of its own: the other tests' stacks share the emulator, and
	// TestCommandLine counts every title on stage local.
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: "loadcatalog", Settings: local.FastSettings(), Catalog: catalog})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	small := []string{"--api", s.URL, "--count", "40", "--concurrency", "2", "--voters", "10", "--titles", "2"}

	code, out, errOut := votes(t, append([]string{"load", "--catalog", spec, "--aspects-per-submission", "2", "--changes", "0.3", "--check"}, small...)...)
	if code != 0 || !strings.Contains(out, "accepted 40, rejected 0") || !strings.Contains(out, "check: all 2 titles tally exactly") ||
		!hasRow(out, "TITLE", "ASPECT", "CHOICE", "VOTES") || strings.Contains(out, "map[") {
		t.Errorf("load with --catalog: exit %d\n%s%s", code, out, errOut)
	}
	// Nothing accepted is a failed load: exit 1, saying so.
	if code, out, errOut := votes(t, append([]string{"load"}, small...)...); code != 1 || !strings.Contains(out, "accepted 0, rejected 40") ||
		!strings.Contains(errOut, "no submission was accepted") {
		t.Errorf("load on the standard catalog against another: exit %d, want 1 with every submission refused\n%s%s", code, out, errOut)
	}
	if code, _, errOut := votes(t, append([]string{"load", "--catalog", spec, "--aspects-per-submission", "3"}, small...)...); code != 2 || !strings.Contains(errOut, "1 to 2") {
		t.Errorf("3 aspects per submission from a catalog of 2: exit %d, %q", code, errOut)
	}

	// A running votes dev declares its catalog; a load of its API takes it.
	unregister, err := registerStack(devState{Name: "loadcatalog", Endpoint: s.Endpoint, API: s.URL, Stage: "loadcatalog", PID: os.Getpid(), Started: time.Now(), Catalog: catalog.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer unregister()
	if code, out, errOut := votes(t, append([]string{"load"}, small...)...); code != 0 || !strings.Contains(out, "accepted 40, rejected 0") {
		t.Errorf("load of the running votes dev: exit %d\n%s%s", code, out, errOut)
	}
}

// TestLoadFailsOnConnectionFailures: an API that drops every other
// connection takes every submission on its retry, but the load still
// exits 1, saying how many connections failed.
func TestLoadFailsOnConnectionFailures(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%2 == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, `{"submissionId":"x","voteIds":["y"]}`)
	}))
	defer srv.Close()
	code, out, errOut := votes(t, "load", "--api", srv.URL, "--count", "4", "--concurrency", "1", "--titles", "1", "--retries", "0", "--changes", "0")
	if code != 1 || !regexp.MustCompile(`accepted 4, rejected 0, connection failures [1-9]\d*;`).MatchString(out) ||
		!regexp.MustCompile(`votes load: [1-9]\d* connection failures to `+srv.URL).MatchString(errOut) {
		t.Errorf("load with connection failures: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if !hasRow(out, "TITLE", "ASPECT", "CHOICE", "VOTES") || strings.Contains(out, "map[") {
		t.Errorf("load does not print its expected tallies as a table:\n%s", out)
	}
}

// TestLoadPrintsMismatchesAsATable: each count that differs, with what
// the run must produce; the counts that agree are left out.
func TestLoadPrintsMismatchesAsATable(t *testing.T) {
	var b strings.Builder
	writeMismatches(&b, []loadgen.Mismatch{{
		TitleID: "load-r-1",
		Got:     projections.Counts{"story": {"up": 3, "down": 1}},
		Want:    projections.Counts{"story": {"up": 2, "down": 1}, "acting": {"up": 1}},
	}})
	out := b.String()
	if !hasRow(out, "TITLE", "ASPECT", "CHOICE", "TALLIED", "WANT") || !hasRow(out, "load-r-1", "story", "up", "3", "2") ||
		!hasRow(out, "load-r-1", "acting", "up", "0", "1") || strings.Contains(out, "down") {
		t.Errorf("mismatch table:\n%s", out)
	}
}
