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
	"syscall"
	"text/tabwriter"
	"time"

	"votes/domain"
)

const apiUsage = "base URL of the HTTP API (default: $VOTES_API, else the running votes dev)"

const stackUsage = "the running votes dev of this name, instead of --api (default: the only one running; see votes stacks)"

// apiOf is the HTTP API a command reads: --api, else the stack named by
// --stack, else VOTES_API, else the only votes dev running here.
func apiOf(api, stack string) (string, error) {
	switch {
	case api != "" && stack != "":
		return "", usageError{errors.New("give --api or --stack, not both")}
	case api != "":
		return api, nil
	case stack == "" && os.Getenv("VOTES_API") != "":
		return os.Getenv("VOTES_API"), nil
	}
	dev, err := pickStack(stack)
	if errors.Is(err, errNoStack) {
		return "", usageError{fmt.Errorf("%w: start one with: votes dev; or give --api URL (or VOTES_API) of a deployment", err)}
	}
	return dev.API, err
}

// unreachable words an API that does not answer for someone who may not
// have started the stack.
func unreachable(api string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("nothing answers at %s (connection refused): is the votes dev there still running? start one with: votes dev; or give --api URL of a running deployment", api)
	}
	return err
}

func runTallies(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tallies", stderr)
	apiFlag := fs.String("api", "", apiUsage)
	stack := fs.String("stack", "", stackUsage)
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
	api, err := apiOf(*apiFlag, *stack)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/titles/"+url.PathEscape(title)+"/tallies", nil)
	if err != nil {
		return usageError{err}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read tallies: %w", unreachable(api, err))
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
