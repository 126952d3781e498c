package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"votes/infra/awscfg"
	"votes/infra/dynamo"
)

// runDataChild is the child branch of the --data tests: `votes dev` on a
// free port, keeping its state in VOTES_TEST_DATA.
func runDataChild() {
	runChild(append([]string{"dev", "--addr", "127.0.0.1:0", "--data", os.Getenv("VOTES_TEST_DATA")}, strings.Fields(os.Getenv("VOTES_TEST_DEV_ARGS"))...)...)
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestDevRefusesABusyAWSAddr: --aws-addr on an address in use is refused
// before anything starts, saying which flag and address.
func TestDevRefusesABusyAWSAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	code, _, errOut := votes(t, "dev", "--addr", "127.0.0.1:0", "--aws-addr", ln.Addr().String())
	if want := "--aws-addr " + ln.Addr().String() + " is in use by another program"; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("votes dev --aws-addr on a busy address: exit %d, %q; want 2 and %q", code, errOut, want)
	}
}

// TestDevDataSurvivesARestart: with --data and --aws-addr, a stack stopped
// with Ctrl-C and started again serves the emulator on the same address,
// its queue URLs naming it, and has the same tallies at once; then a new vote, a
// changed vote and a resent submission of the first run each count
// exactly once, and votes verify finds the tallies equal to the fold of
// every event, the resent one stored once. In child processes: kumo reads
// its data directory when the process starts.
func TestDevDataSurvivesARestart(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "data" {
		runDataChild()
	}
	dir, cache, awsAddr := t.TempDir(), t.TempDir(), freeAddr(t)
	start := func() *devChild {
		dev := startDevAs(t, "TestDevDataSurvivesARestart", "VOTES_TEST_DEV_CHILD=data", "VOTES_TEST_DATA="+dir, "XDG_CACHE_HOME="+cache, "VOTES_TEST_DEV_ARGS=--aws-addr "+awsAddr)
		if !strings.Contains(dev.banner, "aws endpoint http://"+awsAddr+" ") || !strings.Contains(dev.banner, "submissions queue http://"+awsAddr+"/000000000000/votes-local-submissions") {
			t.Errorf("votes dev --aws-addr %s does not serve the emulator there, or its queue URLs do not name it:\n%s", awsAddr, dev.banner)
		}
		return dev
	}
	dev := start()
	if !strings.Contains(dev.banner, "data in "+dir+": tables, queues and stream position are kept there") {
		t.Errorf("votes dev --data does not say where it keeps its data:\n%s", dev.banner)
	}
	first := []vote{
		{"k1", "u-1", "story", "up"}, {"k1a", "u-1", "acting", "up"}, {"k2", "u-2", "story", "up"},
		{"k3", "u-3", "story", "up"}, {"k4", "u-4", "story", "up"}, {"k5", "u-5", "story", "down"}, {"k6", "u-6", "story", "down"},
	}
	for _, v := range first {
		post(t, dev.url, v)
	}
	want := `{"acting":{"down":0,"up":1},"story":{"down":2,"up":4}}`
	waitTallies(t, dev.url, "tt-data", want)
	dev.stop(t)

	dev = start()
	if !strings.Contains(dev.banner, "7 events restored after a clean stop") {
		t.Errorf("votes dev --data does not say it restored the 7 events of a clean stop:\n%s", dev.banner)
	}
	if got := tallies(t, dev.url, "tt-data"); got != want {
		t.Errorf("right after the restart the tallies are %s, want %s as before the stop", got, want)
	}
	post(t, dev.url, vote{"k7", "u-7", "story", "up"})  // new
	post(t, dev.url, vote{"k5b", "u-5", "story", "up"}) // changed: u-5 from down to up
	post(t, dev.url, first[0])                          // resent: the same submission under the same key
	want = `{"acting":{"down":0,"up":1},"story":{"down":1,"up":6}}`
	waitTallies(t, dev.url, "tt-data", want)
	endpoint := bannerEndpoint(t, dev.banner)
	if code, out, errOut := votes(t, "verify", "--endpoint", endpoint); code != 0 || !strings.Contains(out, "1 titles, 9 events, 0 differences") {
		t.Errorf("verify after the restart: exit %d, want 0 with 9 events (7, a new one, a change; the resent one stored once)\n%s%s", code, out, errOut)
	}
	dev.stop(t)
}

// TestDevDataAfterSIGKILL: a --data stack killed with SIGKILL while votes
// pour in comes back, folds the events of its last snapshot again, and
// votes verify then exits 0. Every vote accepted more than a few seconds
// before the kill is still there (kumo writes its snapshots once a second;
// the test logs how many seconds of votes the kill lost).
func TestDevDataAfterSIGKILL(t *testing.T) {
	if os.Getenv("VOTES_TEST_DEV_CHILD") == "data" {
		runDataChild()
	}
	dir, cache := t.TempDir(), t.TempDir()
	start := func() *devChild {
		return startDevAs(t, "TestDevDataAfterSIGKILL", "VOTES_TEST_DEV_CHILD=data", "VOTES_TEST_DATA="+dir, "XDG_CACHE_HOME="+cache)
	}
	dev := start()
	var (
		mu       sync.Mutex
		accepted = map[string]time.Time{} // voter -> when the 202 came
		stop     = make(chan struct{})
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			v := vote{fmt.Sprintf("s%d", i), fmt.Sprintf("u-%d", i), []string{"story", "acting"}[i%2], []string{"up", "down"}[i%3%2]}
			if code := tryPost(dev.url, v); code == http.StatusAccepted {
				mu.Lock()
				accepted[v.voter] = time.Now()
				mu.Unlock()
			}
		}
	}()
	time.Sleep(6 * time.Second)
	if err := dev.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	dev.cmd.Wait()
	close(stop)
	<-done
	if len(accepted) < 50 {
		t.Fatalf("only %d votes accepted in 6 s before the kill", len(accepted))
	}

	dev = start()
	if !regexp.MustCompile(`\d+ events restored; the last run did not stop cleanly, so the projector folds them all again`).MatchString(dev.banner) {
		t.Errorf("votes dev --data does not say it folds the events again after a kill:\n%s", dev.banner)
	}
	endpoint := bannerEndpoint(t, dev.banner)
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, out, errOut := votes(t, "verify", "--endpoint", endpoint)
		if code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("votes verify after the restart still exits %d after 60 s:\n%s%s", code, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
	}

	stored := storedVotersOf(t, endpoint)
	var lost time.Duration
	lostN := 0
	for voter, at := range accepted {
		if !stored[voter] {
			lostN++
			lost = max(lost, killed.Sub(at))
		}
	}
	t.Logf("SIGKILL lost %d of %d accepted submissions (%.0f a second), the oldest accepted %.1f s before the kill", lostN, len(accepted), float64(len(accepted))/6, lost.Seconds())
	if lost > 4*time.Second {
		t.Errorf("SIGKILL lost a submission accepted %.1f s before the kill; kumo writes a snapshot every second", lost.Seconds())
	}
	dev.stop(t)
}

type vote struct{ key, voter, aspect, choice string }

func (v vote) body() string {
	return fmt.Sprintf(`{"voterId":%q,"titleId":"tt-data","votes":[{"aspect":%q,"choice":%q}]}`, v.voter, v.aspect, v.choice)
}

func tryPost(url string, v vote) int {
	req, err := http.NewRequest(http.MethodPost, url+"/votes", strings.NewReader(v.body()))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", v.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func post(t *testing.T, url string, v vote) {
	t.Helper()
	if code := tryPost(url, v); code != http.StatusAccepted {
		t.Fatalf("POST %s: status %d", v.body(), code)
	}
}

// tallies is a title's aspects as the API gives them, as JSON.
func tallies(t *testing.T, url, title string) string {
	t.Helper()
	for range 20 {
		resp, err := http.Get(url + "/titles/" + title + "/tallies")
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Aspects json.RawMessage }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable { // over the read budget: retry
			time.Sleep(time.Second)
			continue
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET tallies: status %d, %v", resp.StatusCode, err)
		}
		return string(body.Aspects)
	}
	t.Fatal("GET tallies: 503 for 20 s")
	return ""
}

func waitTallies(t *testing.T, url, title, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := tallies(t, url, title)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tallies of %s are %s after 30 s, want %s", title, got, want)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func bannerEndpoint(t *testing.T, banner string) string {
	t.Helper()
	m := regexp.MustCompile(`aws endpoint (\S+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("votes dev did not print its aws endpoint:\n%s", banner)
	}
	return m[1]
}

// storedVotersOf is every voter with an event in the local stage's event
// table at endpoint.
func storedVotersOf(t *testing.T, endpoint string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	c, err := awscfg.New(ctx, awscfg.Options{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	var start map[string]dtypes.AttributeValue
	for {
		page, err := c.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(dynamo.TablesFor("local").Events), ExclusiveStartKey: start})
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			if v, ok := it[dynamo.AttrVoterID].(*dtypes.AttributeValueMemberS); ok {
				out[v.Value] = true
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		start = page.LastEvaluatedKey
	}
}
