package local_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"votes/domain"
	"votes/infra/local"
	"votes/internal/kumotest"
)

// TestStopUnderLoadLosesNothing: Stop while submissions pour in leaves
// every accepted vote stored or on the queue, and the messages of the
// batches it cut off visible again at once (a restart on the same data
// takes them up straight away, not after the 3-minute visibility
// timeout). With no grace, the batches in flight are cut off; with some,
// they finish.
func TestStopUnderLoadLosesNothing(t *testing.T) {
	for _, grace := range []time.Duration{0, 1500 * time.Millisecond} {
		t.Run("grace "+grace.String(), func(t *testing.T) {
			opts := kumotest.Options(nil)
			// Processor batches that gather for a second, so that one is in
			// flight when Stop comes (the deployed batches of 10 with no
			// window are done in milliseconds).
			settings := local.DefaultSettings()
			settings.Processor.BatchSize, settings.Processor.Window = 100, time.Second
			s, err := local.Start(context.Background(), local.Config{Addr: "127.0.0.1:0", Stage: kumotest.Stage(t), Endpoint: opts.Endpoint, Retryer: opts.Retryer, Settings: settings})
			if err != nil {
				t.Fatal(err)
			}
			var (
				mu       sync.Mutex
				accepted []string // vote IDs of 202 answers
				halt     = make(chan struct{})
				wg       sync.WaitGroup
			)
			for w := range 12 {
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-halt:
							return
						default:
						}
						body := fmt.Sprintf(`{"voterId":"u-%d-%d","titleId":"tt%d","votes":[{"aspect":"story","choice":"up"}]}`, w, i, i%5)
						resp, err := http.Post(s.URL+"/votes", "application/json", strings.NewReader(body))
						if err != nil {
							time.Sleep(10 * time.Millisecond)
							continue
						}
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						var out struct {
							VoteIDs []string `json:"voteIds"`
						}
						if resp.StatusCode == http.StatusAccepted && json.Unmarshal(b, &out) == nil {
							mu.Lock()
							accepted = append(accepted, out.VoteIDs...)
							mu.Unlock()
						}
					}
				})
			}
			time.Sleep(2 * time.Second)
			rep := s.Stop(context.Background(), grace)
			close(halt)
			wg.Wait()
			t.Logf("stopped in %s with %d votes accepted: %+v", rep.Elapsed.Round(time.Millisecond), len(accepted), rep)
			if rep.Elapsed > 3*time.Second {
				t.Errorf("Stop took %s", rep.Elapsed)
			}
			if len(accepted) == 0 {
				t.Fatal("no vote accepted")
			}
			if grace == 0 && rep.Interrupted["processor"] == 0 {
				t.Errorf("with no grace under load, no processor batch was cut off: %+v", rep)
			}

			kept := map[string]bool{}
			for _, e := range kumotest.StoredEvents(t, s.Tables.Events) {
				kept[e.VoteID] = true
			}
			sq := kumotest.Clients(t, nil).SQS
			url := s.QueueURLs[s.Queues.Submissions]
			received := 0
			for {
				out, err := sq.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10, VisibilityTimeout: 600})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Messages) == 0 {
					break
				}
				received += len(out.Messages)
				for _, m := range out.Messages {
					sub, err := domain.DecodeAccepted([]byte(aws.ToString(m.Body)))
					if err != nil {
						t.Fatal(err)
					}
					for _, v := range sub.Votes {
						kept[v.VoteID] = true
					}
				}
			}
			if received != rep.Queued {
				t.Errorf("Stop reports %d submissions queued, %d could be received at once: the cut-off batches' messages must be visible again", rep.Queued, received)
			}
			lost := 0
			for _, id := range accepted {
				if !kept[id] {
					lost++
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d accepted votes are neither stored nor queued after the stop", lost, len(accepted))
			}
		})
	}
}
