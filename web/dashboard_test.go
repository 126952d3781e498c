package web_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"votes/domain"
	"votes/handlers"
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

// seed appends votes on three titles, 70 minutes apart over the last two
// days, to the event table, as the processor would have: the pipeline
// projects them as it does live votes. One voter changes its mind on
// tt-loved an hour and a half ago, and that later vote is appended first,
// so it is projected before the vote it replaces.
func seed(t *testing.T, s *local.Stack) []domain.VoteCast {
	t.Helper()
	ctx := context.Background()
	events := dynamo.NewEventStore(s.Admin.DynamoDB, s.Tables.Events)
	now := time.Now()
	start := now.Add(-45 * time.Hour)
	var all []domain.VoteCast
	appendOne := func(e domain.VoteCast) {
		if _, err := events.Append(ctx, []domain.VoteCast{e}); err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
	}
	appendOne(projectiontest.Vote("u01", "tt-loved", "s-tt-loved-changed", "overall", "down", now.Add(-90*time.Minute).UnixNano()))
	n := 0
	add := func(title string, up, down int, aspect string) {
		for i := range up + down {
			choice := "up"
			if i >= up {
				choice = "down"
			}
			at := start.Add(time.Duration(n) * 70 * time.Minute).UnixNano()
			n++
			appendOne(projectiontest.Vote(fmt.Sprintf("u%02d", i), title, fmt.Sprintf("s-%s-%s-%d", title, aspect, i), aspect, choice, at))
		}
	}
	add("tt-loved", 9, 1, "overall")
	add("tt-loved", 3, 2, "story")
	add("tt-mixed", 10, 10, "overall")
	add("tt-lucky", 1, 0, "overall")
	return all
}

// before is the events received before at.
func before(events []domain.VoteCast, at time.Time) []domain.VoteCast {
	var out []domain.VoteCast
	for _, e := range events {
		if e.RecordedAt < at.UnixNano() {
			out = append(out, e)
		}
	}
	return out
}

// chartState is what the title page's chart draws: the uPlot instance's
// own series and data, and the trend they came from.
type chartState struct {
	Bucket, Aspect, From, To string
	Labels                   []string
	Data                     [][]float64
}

const readChart = `(() => {
  const u = window.trendChart, c = document.getElementById("chart");
  return u ? {Bucket: c.dataset.bucket, Aspect: c.dataset.aspect, From: c.dataset.from, To: c.dataset.to,
              Labels: u.series.map((s) => s.label), Data: u.data} : {};
})()`

// chartIsTrend says how the chart differs from the API's trend of the same
// title, aspect, bucket and span; nil when it draws exactly its points:
// x the end of each bucket, then the tally and the votes cast of each
// choice.
func chartIsTrend(c chartState, api handlers.TrendBody) error {
	width := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[api.Bucket]
	labels := []string{"end of bucket (UTC)", "tally up", "tally down", "cast up", "cast down"}
	if !slices.Equal(c.Labels, labels) || len(c.Data) != len(labels) {
		return fmt.Errorf("the chart's series are %v, want %v", c.Labels, labels)
	}
	if len(api.Points) == 0 || len(c.Data[0]) != len(api.Points) {
		return fmt.Errorf("the chart has %d points, the API %d", len(c.Data[0]), len(api.Points))
	}
	for i, p := range api.Points {
		want := []float64{float64(p.T.Add(width).Unix()), float64(p.Tally["up"]), float64(p.Tally["down"]), float64(p.Cast["up"]), float64(p.Cast["down"])}
		for k, w := range want {
			if len(c.Data[k]) != len(api.Points) {
				return fmt.Errorf("the chart's %s has %d values, the API %d points", labels[k], len(c.Data[k]), len(api.Points))
			}
			if c.Data[k][i] != w {
				return fmt.Errorf("the chart's %s at %d is %v, the API's point at %s gives %v", labels[k], i, c.Data[k][i], p.T, w)
			}
		}
	}
	return nil
}

// bar is an aspect's counts as the page shows them.
type bar struct{ Aspect, Up, Down string }

// TestDashboardInChromium drives the dashboard in Chromium over a local
// stack with votes on three titles over two days: the leaderboard and its
// sort follow GET /titles, a title's bars hold the fold, its chart draws
// GET /titles/{id}/trend by hour and by day, and its time slider, moved
// from the keyboard, shows the fold of the votes received before the
// minute the API answered; shared links open the same views.
func TestDashboardInChromium(t *testing.T) {
	s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: "dashboard", Settings: local.FastSettings(), Catalog: domain.DefaultCatalog()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	all := seed(t, s)
	fold := projections.Fold(all)
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

	// Its chart draws the API's trend, hour by hour over the last two
	// days by default, which ends on the fold; then by day, chosen from
	// the keyboard.
	opened := time.Now()
	checkChart := func(bucket string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			c, err := chromedp.Run(ctx, chromedp.Evaluate[chartState](readChart))
			if err != nil {
				t.Fatal(err)
			}
			var tr handlers.TrendBody
			if c.Bucket == bucket {
				getJSON(t, s.URL+"/titles/tt-loved/trend?"+url.Values{"aspect": {c.Aspect}, "bucket": {c.Bucket}, "from": {c.From}, "to": {c.To}}.Encode(), &tr)
				err = chartIsTrend(c, tr)
			} else {
				err = fmt.Errorf("the chart is by %q, want %q", c.Bucket, bucket)
			}
			if err == nil {
				last := tr.Points[len(tr.Points)-1].Tally
				t.Logf("the chart by %s: %d points from %s to %s, as GET /titles/tt-loved/trend gives them, ending on %v", bucket, len(tr.Points), c.From, c.To, last)
				if c.Aspect != "overall" || tr.To.Before(opened) || !projections.Counts(map[string]map[string]int64{"overall": last}).Equal(projections.Counts{"overall": fold["tt-loved"]["overall"]}) {
					t.Fatalf("the chart shows %s from %s to %s ending on %v; want overall up to now (%s), ending on the fold's %v", c.Aspect, c.From, c.To, last, opened.UTC(), fold["tt-loved"]["overall"])
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("tt-loved's chart by %s: %v", bucket, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	checkChart("hour")

	// The time slider, from the keyboard: to the start of the two days,
	// then three tenths of the way and two minutes on. The page shows the
	// tallies as of the minute the API answered, which are the fold of the
	// votes received before it.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`#asof`)),
		chromedp.KeyEvent(kb.Home),
		chromedp.KeyEvent(kb.PageUp), chromedp.KeyEvent(kb.PageUp), chromedp.KeyEvent(kb.PageUp),
		chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight),
	); err != nil {
		t.Fatal(err)
	}
	type asOf struct {
		At, Slider, Link, Label string
		Bars                    []bar
	}
	state, err := chromedp.Run(ctx, chromedp.Poll[asOf](`(() => {
	  const box = document.getElementById("asof-tallies"), s = document.getElementById("asof");
	  const at = box.dataset.at, slider = new Date(Number(s.value) * 60000).toISOString().replace(".000Z", "Z");
	  if (!at || at !== slider) return null;
	  return {At: at, Slider: slider, Link: location.search, Label: document.getElementById("asof-time").textContent,
	          Bars: [...box.querySelectorAll(".aspect")].map(a => ({Aspect: a.dataset.aspect, Up: a.dataset.up, Down: a.dataset.down}))};
	})()`, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("the slider's tallies never showed: %v", err)
	}
	at, err := time.Parse(time.RFC3339, state.At)
	if err != nil {
		t.Fatal(err)
	}
	asOfFold := projections.Fold(before(all, at))["tt-loved"]
	shown := projections.Counts{}
	for _, b := range state.Bars {
		up, _ := strconv.ParseInt(b.Up, 10, 64)
		down, _ := strconv.ParseInt(b.Down, 10, 64)
		shown.Add(b.Aspect, "up", up)
		shown.Add(b.Aspect, "down", down)
	}
	if !shown.Equal(asOfFold) {
		t.Fatalf("as of %s the page shows %v, the fold of the votes received before then says %v", at, shown, asOfFold)
	}
	if len(asOfFold) == 0 || asOfFold.Equal(fold["tt-loved"]) || at.Second() != 0 {
		t.Fatalf("the slider answered %s, where tt-loved had %v of its %v: the seed or the keys do not test a moment in its votes", at, asOfFold, fold["tt-loved"])
	}
	t.Logf("as of %s (the slider's minute, the link %s): the page and the fold say %v; now %v", state.At, state.Link, shown, fold["tt-loved"])
	if !strings.Contains(state.Link, "at="+url.QueryEscape(state.At)) || !strings.Contains(state.Label, at.Format("2006-01-02 15:04")) {
		t.Fatalf("as of %s the link is %q and the slider says %q", state.At, state.Link, state.Label)
	}

	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.CSS(`#bucket`)),
		chromedp.KeyEvent(kb.ArrowDown),
	); err != nil {
		t.Fatal(err)
	}
	checkChart("day")

	// A shared link opens the same view.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/?sort=approval&aspect=overall"),
		chromedp.WaitVisible(chromedp.CSS(`#leaderboard tbody tr:nth-child(3)`)),
	); err != nil {
		t.Fatal(err)
	}
	rows = evalStrings(`[...document.querySelectorAll("#leaderboard tbody tr")].map(r => r.dataset.title)`)
	if !slices.Equal(rows, want) {
		t.Fatalf("the shared link by approval shows %v, the API %v", rows, want)
	}
	// And a title's, as of a moment: the screenshot.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/?title=tt-loved&"+url.Values{"at": {state.At}}.Encode()),
		chromedp.Steps(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`document.getElementById("asof-tallies").dataset.at === `+strconv.Quote(state.At)+` && window.trendChart?.data[0].length > 0`)(ctx, tg)
			return chromedp.Void{}, err
		}),
	); err != nil {
		t.Fatalf("the shared link as of %s: %v", state.At, err)
	}
	// At a phone's width the page, chart included, fits: nothing to
	// scroll sideways.
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(390, 844),
		chromedp.Steps(func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			_, err := chromedp.Poll[bool](`(() => { const d = document.documentElement;
			  return d.clientWidth <= 390 && d.scrollWidth <= d.clientWidth && window.trendChart.width <= d.clientWidth; })()`,
				chromedp.WithPollingTimeout(10*time.Second))(ctx, tg)
			return chromedp.Void{}, err
		}),
	); err != nil {
		widths, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.clientWidth, document.documentElement.scrollWidth, window.trendChart.width]`))
		t.Fatalf("at 390 px wide the page scrolls sideways (client, scroll and chart widths %v): %v", widths, err)
	}

	// The whole page at 1200 px, the window as tall as it.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, 900)); err != nil {
		t.Fatal(err)
	}
	height, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollHeight`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1200, height)); err != nil {
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
