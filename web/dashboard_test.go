package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"votes/domain"
	"votes/infra/dynamo"
	"votes/infra/local"
	"votes/projections"
	"votes/projections/projectiontest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the dashboard's screenshot to docs/dashboard.png")

// chromium is Debian's browser, which .ci/run installs.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: install Debian's chromium (apt-get install chromium), as .ci/run does")
	return ""
}

// browser starts a headless Chromium that reaches nothing but localhost.
func browser(t *testing.T) context.Context {
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1200, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	return ctx
}

type apiTitle struct {
	TitleID string                      `json:"titleId"`
	Votes   int64                       `json:"votes"`
	Aspects map[string]map[string]int64 `json:"aspects"`
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// seed appends votes on three titles, spread over the last three days, to
// the event table, as the processor would have: the pipeline projects
// them as it does live votes.
func seed(t *testing.T, s *local.Stack) []domain.VoteCast {
	t.Helper()
	ctx := context.Background()
	events := dynamo.NewEventStore(s.Admin.DynamoDB, s.Tables.Events)
	start := time.Now().Add(-72 * time.Hour)
	var all []domain.VoteCast
	add := func(title string, up, down int, aspect string) {
		for i := range up + down {
			choice := "up"
			if i >= up {
				choice = "down"
			}
			at := start.Add(time.Duration(len(all)) * 37 * time.Minute).UnixNano()
			e := projectiontest.Vote(fmt.Sprintf("u%02d", i), title, fmt.Sprintf("s-%s-%s-%d", title, aspect, i), aspect, choice, at)
			if _, err := events.Append(ctx, []domain.VoteCast{e}); err != nil {
				t.Fatal(err)
			}
			all = append(all, e)
		}
	}
	add("tt-loved", 9, 1, "overall")
	add("tt-loved", 3, 2, "story")
	add("tt-mixed", 10, 10, "overall")
	add("tt-lucky", 1, 0, "overall")
	return all
}

func TestDashboardInChromium(t *testing.T) {
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: "dashboard", Settings: local.FastSettings(), Catalog: domain.DefaultCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	fold := projections.Fold(seed(t, s))
	var cast int64
	for _, c := range fold {
		for _, m := range c {
			for _, n := range m {
				cast += n
			}
		}
	}

	// The leaderboard the API gives once every vote is ranked.
	var api struct{ Titles []apiTitle }
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A fresh value each time: decoding into the last one would merge
		// into its maps.
		api.Titles = nil
		getJSON(t, s.URL+"/titles", &api)
		total := int64(0)
		for _, r := range api.Titles {
			total += r.Votes
		}
		if len(api.Titles) == 3 && total == cast {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /titles never ranked the %d votes: %+v", cast, api.Titles)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range api.Titles {
		if !projections.Counts(r.Aspects).Equal(fold[r.TitleID]) {
			t.Fatalf("API ranks %s with %v, the fold says %v", r.TitleID, r.Aspects, fold[r.TitleID])
		}
	}

	ctx := browser(t)
	evalStrings := func(expr string) []string {
		t.Helper()
		out, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#leaderboard tbody tr:nth-child(3)`)),
	); err != nil {
		t.Fatal(err)
	}
	rows := evalStrings(`[...document.querySelectorAll("#leaderboard tbody tr")].map(r => r.dataset.title)`)
	votes := evalStrings(`[...document.querySelectorAll("#leaderboard tbody tr td:nth-child(3)")].map(td => td.textContent)`)
	var want, wantVotes []string
	for _, r := range api.Titles {
		want = append(want, r.TitleID)
		wantVotes = append(wantVotes, strconv.FormatInt(r.Votes, 10))
	}
	if !slices.Equal(rows, want) || !slices.Equal(votes, wantVotes) {
		t.Fatalf("leaderboard rows %v with votes %v, the API says %v with %v", rows, votes, want, wantVotes)
	}

	// Sorting by approval from the keyboard (the sort list's next
	// choice): the rows follow the API's order, and the link says so.
	var byApproval struct{ Titles []apiTitle }
	getJSON(t, s.URL+"/titles?sort=approval", &byApproval)
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`#sort`)),
		chromedp.KeyEvent(kb.ArrowDown),
		chromedp.Steps(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`location.search.includes("sort=approval") && document.querySelector("#leaderboard tbody tr")?.dataset.title === "tt-loved"`)(ctx, tg)
			return chromedp.Void{}, err
		}),
	); err != nil {
		t.Fatal(err)
	}
	rows = evalStrings(`[...document.querySelectorAll("#leaderboard tbody tr")].map(r => r.dataset.title)`)
	byVotes := want
	want = nil
	for _, r := range byApproval.Titles {
		want = append(want, r.TitleID)
	}
	if slices.Equal(want, byVotes) {
		t.Fatalf("the API ranks the titles the same by approval as by votes (%v): the seed does not tell the orders apart", want)
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("by approval the page shows %v, the API %v", rows, want)
	}

	// A title's page: its bars hold the fold's counts.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[data-title="tt-loved"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tallies .aspect[data-aspect="story"]`)),
	); err != nil {
		t.Fatal(err)
	}
	type bar struct{ Aspect, Up, Down string }
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[[]bar](`[...document.querySelectorAll("#tallies .aspect")].map(a => ({Aspect: a.dataset.aspect, Up: a.dataset.up, Down: a.dataset.down}))`))
	if err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	got := projections.Counts{}
	for _, b := range bars {
		up, _ := strconv.ParseInt(b.Up, 10, 64)
		down, _ := strconv.ParseInt(b.Down, 10, 64)
		got.Add(b.Aspect, "up", up)
		got.Add(b.Aspect, "down", down)
	}
	if !got.Equal(fold["tt-loved"]) || location != s.URL+"/?title=tt-loved" {
		t.Fatalf("tt-loved's page at %s shows %v, the fold says %v", location, got, fold["tt-loved"])
	}

	// A shared link opens the same view.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/?sort=approval&aspect=overall"),
		chromedp.WaitVisible(chromedp.CSS(`#leaderboard tbody tr:nth-child(3)`)),
	); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/dashboard.png"
	if *updateScreenshot {
		path = "../docs/dashboard.png"
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
