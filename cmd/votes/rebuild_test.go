package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"votes/admin"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestRebuildInterruptedThenPending: Ctrl-C during votes rebuild prints
// one line, with the resume hint, and exits 130; a plain votes rebuild
// then names the version left building and asks for --resume or
// --abandon; --abandon retires it and rebuilds a new version.
func TestRebuildInterruptedThenPending(t *testing.T) {
	opts := kumotest.Options(nil)
	stage := kumotest.Stage(t)
	s, err := local.Start(context.Background(), local.Config{Stage: stage, Endpoint: opts.Endpoint, Settings: local.FastSettings()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(context.Background(), 0) })
	at := []string{"--endpoint", s.Endpoint, "--stage", stage}
	// votes seed with the stack's stage (it takes only --endpoint's default).
	seeder := admin.New(dynamo.NewStage(s.Admin.DynamoDB, s.Tables).Deployment())
	if _, err := seeder.Seed(context.Background(), admin.SeedOptions{Events: 8000, Titles: 20, Seed: 1}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// Ctrl-C once the rebuild has begun: its version is building. (A
		// fixed delay could land before that on a loaded machine.)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			vs, _, err := seeder.Versions(context.Background())
			if err == nil && slices.ContainsFunc(vs, func(v admin.VersionInfo) bool { return v.Name == "2" }) {
				time.Sleep(150 * time.Millisecond)
				break
			}
		}
		cancel()
	}()
	var out, errOut bytes.Buffer
	began := time.Now()
	code := run(ctx, append([]string{"rebuild", "--segments", "4", "--page", "500"}, at...), &out, &errOut)
	t.Logf("interrupted after %s:\n%s%s", time.Since(began).Round(time.Millisecond), out.String(), errOut.String())
	if code != 130 {
		t.Fatalf("interrupted rebuild: exit %d, want 130\n%s%s", code, out.String(), errOut.String())
	}
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "rebuild of version 2 interrupted: ") || !strings.Contains(lines[0], "carry on with: votes rebuild --resume") {
		t.Errorf("interrupted rebuild printed %d lines, want one with the resume hint:\n%s", len(lines), out.String())
	}
	if strings.Contains(errOut.String(), "context canceled") || strings.Contains(errOut.String(), "cells failed") {
		t.Errorf("interrupted rebuild printed its segments' errors:\n%s", errOut.String())
	}

	code, o, e := votes(t, append([]string{"rebuild"}, at...)...)
	if code != 1 || !strings.Contains(e, "version 2: a version is still building") ||
		!strings.Contains(e, "votes rebuild --resume") || !strings.Contains(e, "votes rebuild --abandon") {
		t.Errorf("a new rebuild beside the interrupted one: exit %d\n%s%s", code, o, e)
	}
	if code, _, e := votes(t, append([]string{"rebuild", "--resume", "--abandon"}, at...)...); code != 2 || !strings.Contains(e, "not both") {
		t.Errorf("rebuild --resume --abandon: exit %d %s", code, e)
	}
	code, o, e = votes(t, append([]string{"rebuild", "--abandon", "--segments", "4", "--page", "1000"}, at...)...)
	if code != 0 || !strings.Contains(o, "version 2 abandoned: retired, ") || !strings.Contains(o, "rebuilt version 3: 8000 events") {
		t.Errorf("rebuild --abandon: exit %d\n%s%s", code, o, e)
	}
	code, o, e = votes(t, append([]string{"versions"}, at...)...)
	if code != 0 || !hasRow(o, "2", "retired") || !hasRow(o, "3", "ready") {
		t.Errorf("versions after rebuild --abandon: exit %d\n%s%s", code, o, e)
	}
}
