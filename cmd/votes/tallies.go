package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"votes/domain"
)

func defaultAPI() string {
	if v := os.Getenv("VOTES_API"); v != "" {
		return v
	}
	if dev, ok := runningDev(); ok && dev.API != "" {
		return dev.API
	}
	return "http://127.0.0.1:8080"
}

func runTallies(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tallies", stderr)
	api := fs.String("api", defaultAPI(), "base URL of the HTTP API (env VOTES_API; default: the running votes dev)")
	asJSON := fs.Bool("json", false, "print the API's JSON as it is")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usageError{errors.New("want one TITLE")}
	}
	if err := noMoreArgs(pos, 1); err != nil {
		return err
	}
	title, err := domain.ValidTitleID(pos[0])
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(*api, "/")+"/titles/"+url.PathEscape(title)+"/tallies", nil)
	if err != nil {
		return usageError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read tallies: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read tallies: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("read tallies: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if *asJSON {
		_, err := fmt.Fprintln(stdout, string(body))
		return err
	}
	var t struct {
		TitleID string                      `json:"titleId"`
		Aspects map[string]map[string]int64 `json:"aspects"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return fmt.Errorf("read tallies: %w", err)
	}
	if len(t.Aspects) == 0 {
		_, err := fmt.Fprintf(stdout, "%s: no votes yet\n", t.TitleID)
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tASPECT\tCHOICE\tVOTES\n", "TITLE")
	for _, aspect := range sortedKeys(t.Aspects) {
		for _, choice := range sortedKeys(t.Aspects[aspect]) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", t.TitleID, aspect, choice, t.Aspects[aspect][choice])
		}
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
