package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"votes/domain"
	"votes/infra/local"
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
	if code != 0 || !strings.Contains(out, "accepted 40, rejected 0") || !strings.Contains(out, "check: all 2 titles tally exactly") {
		t.Errorf("load with --catalog: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := votes(t, append([]string{"load"}, small...)...); code != 0 || !strings.Contains(out, "accepted 0, rejected 40") {
		t.Errorf("load on the standard catalog against another: exit %d, want every submission refused\n%s", code, out)
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
