// Package kumotest gives tests the kumo emulator over real HTTP: one server
// per test binary (kumo's state is process-global), unique resource names
// per test, SDK clients for it, and a transport that injects faults under
// the real SDK (package faults).
package kumotest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/sivchari/kumo"

	"votes/domain"
	"votes/infra/awscfg"
	"votes/infra/dynamo"
)

var (
	once   sync.Once
	server *kumo.Server
	serial atomic.Int64
)

// URL starts the test binary's emulator on first use and returns its
// endpoint. It runs until the binary exits.
func URL() string {
	once.Do(func() { server = kumo.NewServer() })
	return server.URL
}

// Stage is a stage name no other test in the binary uses, so that tables
// and queues do not collide in the shared emulator.
func Stage(t testing.TB) string {
	name := strings.NewReplacer("/", "-", "_", "-", " ", "-").Replace(strings.ToLower(t.Name()))
	if len(name) > 30 {
		name = name[:30]
	}
	return fmt.Sprintf("%s-%d", name, serial.Add(1))
}

// Options are client options for the emulator: through httpClient when it
// is not nil, and with the SDK's standard retryer backing off for at most
// 20ms, so that tests full of injected faults stay quick.
func Options(httpClient aws.HTTPClient) awscfg.Options {
	return awscfg.Options{
		Endpoint:   URL(),
		HTTPClient: httpClient,
		Retryer: func() aws.Retryer {
			return retry.AddWithMaxBackoffDelay(retry.NewStandard(), 20*time.Millisecond)
		},
	}
}

// Clients are SDK clients for the emulator, sending through httpClient when
// it is not nil.
func Clients(t testing.TB, httpClient aws.HTTPClient) awscfg.Clients {
	t.Helper()
	c, err := awscfg.New(context.Background(), Options(httpClient))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// StoredEvents scans an event table of the emulator and decodes every item;
// an item that is not a valid event fails the test.
func StoredEvents(t testing.TB, table string) []domain.VoteCast {
	t.Helper()
	db := Clients(t, nil).DynamoDB
	var out []domain.VoteCast
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Items {
			e, err := dynamo.DecodeEvent(item)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, e...)
		}
	}
	return out
}
