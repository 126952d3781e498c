package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"votes/domain"
	"votes/infra/dynamo"
)

// demoTitles are the titles votes dev --demo votes on, most popular first.
var demoTitles = []string{
	"the-long-night", "harbour-lights", "paper-moons", "quiet-engines", "salt-and-iron", "northbound",
	"glass-orchard", "the-ninth-wave", "small-hours", "ember-street", "low-tide", "copper-sky",
}

// demoVotes are three days of submissions up to now over the demo titles:
// 300 viewers, a few titles far more popular than the rest, each title
// liked to its own degree, 1 to 3 aspects a submission, and some viewers
// changing their minds later. The same now and catalog give the same
// votes.
func demoVotes(now time.Time, catalog domain.Catalog) [][]domain.VoteCast {
	rng := rand.New(rand.NewPCG(7, 11))
	aspects := catalog.Aspects()
	var out [][]domain.VoteCast
	start := now.Add(-72 * time.Hour)
	for i := range 1500 {
		// Popularity falls off with the title's rank, as a Zipf skew.
		t := 0
		for r := rng.Float64() * 3.1; t < len(demoTitles)-1 && r > 1/float64(t+1); t++ {
			r -= 1 / float64(t+1)
		}
		title := demoTitles[t]
		liked := 0.35 + 0.5*float64((t*7)%len(demoTitles))/float64(len(demoTitles))
		voter := fmt.Sprintf("viewer-%03d", rng.IntN(300))
		at := start.Add(time.Duration(rng.Int64N(int64(72 * time.Hour))))
		n := 1 + rng.IntN(min(3, len(aspects)))
		var choices []domain.Choice
		for _, k := range rng.Perm(len(aspects))[:n] {
			a := aspects[k]
			choice := a.Choices[len(a.Choices)-1]
			if rng.Float64() < liked {
				choice = a.Choices[0]
			}
			choices = append(choices, domain.Choice{Aspect: a.Name, Choice: choice})
		}
		s := domain.Submission{VoterID: voter, TitleID: title, Votes: choices}
		out = append(out, s.Accept(fmt.Sprintf("demo-%04d", i), at).Events())
	}
	return out
}

// seedDemo appends the demo's submissions to the event table as the
// processor does, one item each, so that the stream carries them to the
// projector like live votes, with their receive times days apart.
func seedDemo(ctx context.Context, db *dynamodb.Client, table string, now time.Time, catalog domain.Catalog) ([]domain.VoteCast, error) {
	store := dynamo.NewEventStore(db, table)
	var all []domain.VoteCast
	for _, sub := range demoVotes(now, catalog) {
		if _, err := store.Append(ctx, sub); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
		all = append(all, sub...)
	}
	return all, nil
}
