package handlers

import (
	"context"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"votes/domain"
	"votes/projections"
)

// RankingReader reads the precomputed ranking pages of a projection
// version, eventually consistent: a page of 100 titles is one read of at
// most 3 read units.
type RankingReader interface {
	Page(ctx context.Context, key projections.RankingKey, number int) (p projections.RankingPage, found bool, err error)
}

// Listing limits of GET /titles.
const (
	DefaultTitleLimit = 50
	MaxTitleLimit     = projections.RankingPageSize
)

// TitleRow is one title of GET /titles.
type TitleRow struct {
	TitleID    string                      `json:"titleId"`
	Votes      int64                       `json:"votes"`
	Approval   float64                     `json:"approval"`
	LastVoteAt string                      `json:"lastVoteAt,omitempty"`
	Aspects    map[string]map[string]int64 `json:"aspects"`
}

// TitleList is GET /titles' body.
type TitleList struct {
	Sort   string `json:"sort"`
	Aspect string `json:"aspect,omitempty"`
	// RankedAt is when the ranker computed the order read (absent before
	// its first run): the counts are the title index's as of then.
	RankedAt string     `json:"rankedAt,omitempty"`
	Titles   []TitleRow `json:"titles"`
	Next     *string    `json:"next"`
}

// titleQuery is a parsed GET /titles.
type titleQuery struct {
	key    projections.RankingKey
	aspect string // the aspect whose approval is shown
	limit  int
	offset int
}

func (q *Query) parseTitleQuery(params map[string]string) (titleQuery, error) {
	tq := titleQuery{limit: DefaultTitleLimit}
	sort := projections.ByVotes
	if s, ok := params["sort"]; ok {
		var known bool
		if sort, known = projections.ParseSort(s); !known {
			return tq, &domain.Error{Code: domain.CodeInvalidField, Field: "sort", Message: fmt.Sprintf("sort %q is not one of votes, approval, recent", s)}
		}
	}
	aspect := params["aspect"]
	if aspect != "" {
		if _, ok := q.catalog.Aspect(aspect); !ok {
			return tq, &domain.Error{Code: domain.CodeInvalidField, Field: "aspect", Message: fmt.Sprintf("aspect %q is not one of %s", aspect, strings.Join(q.catalog.AspectNames(), ", "))}
		}
	}
	tq.aspect = aspect
	if sort == projections.ByApproval && aspect == "" {
		// Approval is per aspect; overall is the one the product leads with.
		aspect = q.catalog.AspectNames()[0]
		tq.aspect = aspect
	}
	if tq.aspect == "" {
		tq.aspect = q.catalog.AspectNames()[0]
	}
	tq.key = projections.RankingKey{Sort: sort, Aspect: aspect}.Canonical()
	if s, ok := params["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxTitleLimit {
			return tq, &domain.Error{Code: domain.CodeInvalidField, Field: "limit", Message: fmt.Sprintf("limit %q must be a whole number from 1 to %d", s, MaxTitleLimit)}
		}
		tq.limit = n
	}
	if c, ok := params["cursor"]; ok {
		off, err := decodeCursor(c, tq.key)
		if err != nil {
			return tq, &domain.Error{Code: domain.CodeInvalidField, Field: "cursor", Message: "cursor is not one this listing gave (" + err.Error() + ")"}
		}
		tq.offset = off
	}
	return tq, nil
}

// A cursor is the offset of the next title in one order, so that it cannot
// be taken to another order by mistake.
func encodeCursor(key projections.RankingKey, offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(key.String() + "@" + strconv.Itoa(offset)))
}

func decodeCursor(c string, key projections.RankingKey) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, fmt.Errorf("not base64url")
	}
	order, off, ok := strings.Cut(string(raw), "@")
	if !ok || order != key.String() {
		return 0, fmt.Errorf("it belongs to another sort or aspect")
	}
	n, err := strconv.Atoi(off)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad offset")
	}
	return n, nil
}

// listTitles answers GET /titles from the ranking pages: one or two page
// reads whatever the number of titles.
func (q *Query) listTitles(ctx context.Context, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	tq, err := q.parseTitleQuery(req.QueryStringParameters)
	if err != nil {
		return errorResponse(clientError(err))
	}
	version, err := q.versions.Active(ctx)
	if err != nil {
		q.log.ErrorContext(ctx, "read active version", "err", err)
		return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "titles cannot be listed right now"})
	}
	rankings := q.rankingsFor(version)
	var rows []projections.TitleSummary
	var rankedAt int64
	more := false
	for n := tq.offset / projections.RankingPageSize; len(rows) < tq.limit+1; n++ {
		page, found, err := rankings.Page(ctx, tq.key, n)
		if err != nil {
			q.log.ErrorContext(ctx, "read ranking page", "order", tq.key.String(), "page", n, "err", err)
			return errorResponse(&domain.Error{Code: CodeUnavailable, Message: "titles cannot be listed right now"})
		}
		if !found {
			break
		}
		if rankedAt == 0 {
			rankedAt = page.Generation
		}
		skip := 0
		if n == tq.offset/projections.RankingPageSize {
			skip = tq.offset % projections.RankingPageSize
		}
		if skip < len(page.Titles) {
			rows = append(rows, page.Titles[skip:]...)
		}
		if len(page.Titles) < projections.RankingPageSize {
			break
		}
	}
	if len(rows) > tq.limit {
		rows, more = rows[:tq.limit], true
	}
	body := TitleList{Sort: string(tq.key.Sort), Aspect: tq.key.Aspect, Titles: make([]TitleRow, 0, len(rows))}
	if rankedAt > 0 {
		body.RankedAt = time.Unix(0, rankedAt).UTC().Format(time.RFC3339Nano)
	}
	for _, s := range rows {
		body.Titles = append(body.Titles, q.titleRow(s, tq.aspect))
	}
	if more {
		next := encodeCursor(tq.key, tq.offset+tq.limit)
		body.Next = &next
	}
	if wantsCSV(req.Headers) {
		return q.titlesCSV(body)
	}
	resp := jsonResponse(http.StatusOK, body)
	resp.Headers["cache-control"] = q.maxAge
	return resp
}

func (q *Query) titleRow(s projections.TitleSummary, aspect string) TitleRow {
	row := TitleRow{TitleID: s.TitleID, Votes: s.Votes(""), Approval: s.Approval(aspect), Aspects: q.withZeros(s.Counts)}
	if s.LastVoteAt > 0 {
		row.LastVoteAt = time.Unix(0, s.LastVoteAt).UTC().Format(time.RFC3339Nano)
	}
	return row
}

// withZeros is counts with every choice of a counted aspect shown, zeros
// included.
func (q *Query) withZeros(counts projections.Counts) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for aspect, m := range counts.Compact() {
		if a, ok := q.catalog.Aspect(aspect); ok {
			for _, c := range a.Choices {
				m[c] += 0
			}
		}
		out[aspect] = m
	}
	return out
}

// wantsCSV reports whether the request asks for CSV before JSON.
func wantsCSV(headers map[string]string) bool {
	for k, v := range headers {
		if strings.EqualFold(k, "accept") {
			for _, part := range strings.Split(v, ",") {
				mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
				switch strings.ToLower(strings.TrimSpace(mt)) {
				case "text/csv":
					return true
				case "application/json", "*/*":
					return false
				}
			}
		}
	}
	return false
}

// titlesCSV is the listing as CSV: the title, its votes, approval and last
// vote, then each aspect's choices of the catalog, in its order.
func (q *Query) titlesCSV(body TitleList) events.APIGatewayV2HTTPResponse {
	var b strings.Builder
	w := csv.NewWriter(&b)
	header := []string{"titleId", "votes", "approval", "lastVoteAt"}
	for _, a := range q.catalog.Aspects() {
		for _, c := range a.Choices {
			header = append(header, a.Name+"_"+c)
		}
	}
	_ = w.Write(header)
	for _, r := range body.Titles {
		rec := []string{r.TitleID, strconv.FormatInt(r.Votes, 10), strconv.FormatFloat(r.Approval, 'f', 4, 64), r.LastVoteAt}
		for _, a := range q.catalog.Aspects() {
			for _, c := range a.Choices {
				rec = append(rec, strconv.FormatInt(r.Aspects[a.Name][c], 10))
			}
		}
		_ = w.Write(rec)
	}
	w.Flush()
	resp := events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Body: b.String(),
		Headers: map[string]string{"content-type": "text/csv; charset=utf-8", "cache-control": q.maxAge}}
	if body.Next != nil {
		// The next page's cursor, as a link a CSV client can follow.
		resp.Headers["link"] = `</titles?cursor=` + *body.Next + `>; rel="next"`
	}
	return resp
}
