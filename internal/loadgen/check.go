package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"votes/internal/backoff"
	"votes/projections"
)

// Mismatch is a title whose tallies differ from what the run must produce.
type Mismatch struct {
	TitleID   string
	Got, Want projections.Counts
}

// ErrUnavailable is a 5xx answer: the API may answer the same request
// later.
var ErrUnavailable = errors.New("unavailable")

// checkRetry paces the reads of a title answered with a 5xx; Check's
// timeout bounds them.
var checkRetry = backoff.Policy{Base: 50 * time.Millisecond, Max: time.Second}

// Check reads every title's tallies from the API until they equal what the
// run must produce or timeout passes (the pipeline is asynchronous), and
// returns the titles that still differ. A read answered with a 5xx is
// tried again until then.
func Check(ctx context.Context, client *http.Client, base string, res Result, timeout time.Duration) ([]Mismatch, error) {
	deadline := time.Now().Add(timeout)
	for {
		var bad []Mismatch
		for _, title := range res.Titles {
			got, err := Tallies(ctx, client, base, title)
			for attempt := 1; errors.Is(err, ErrUnavailable) && time.Now().Before(deadline); attempt++ {
				if werr := checkRetry.Wait(ctx, attempt); werr != nil {
					return nil, werr
				}
				got, err = Tallies(ctx, client, base, title)
			}
			if err != nil {
				return nil, err
			}
			if want := res.Expected[title]; !got.Equal(want) {
				bad = append(bad, Mismatch{TitleID: title, Got: got, Want: want})
			}
		}
		if len(bad) == 0 || time.Now().After(deadline) {
			return bad, nil
		}
		select {
		case <-ctx.Done():
			return bad, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Tallies reads one title's tallies from the API.
func Tallies(ctx context.Context, client *http.Client, base, title string) (projections.Counts, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/titles/"+url.PathEscape(title)+"/tallies", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read tallies of %s: %w", title, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 500 {
		return nil, fmt.Errorf("read tallies of %s: %s: %w", title, resp.Status, ErrUnavailable)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read tallies of %s: %s", title, resp.Status)
	}
	var body struct {
		Aspects projections.Counts `json:"aspects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("read tallies of %s: %w", title, err)
	}
	return body.Aspects, nil
}
