package domain_test

import (
	"reflect"
	"strings"
	"testing"

	"votes/domain"
)

func TestParseCatalog(t *testing.T) {
	tests := []struct {
		spec string
		want []domain.Aspect
	}{
		{"", domain.DefaultCatalog().Aspects()},
		{"   ", domain.DefaultCatalog().Aspects()},
		{"overall=up|down", []domain.Aspect{{Name: "overall", Choices: []string{"up", "down"}}}},
		{
			" overall = up | down ; ; story=good|bad|meh; ",
			[]domain.Aspect{{Name: "overall", Choices: []string{"up", "down"}}, {Name: "story", Choices: []string{"good", "bad", "meh"}}},
		},
		{"stars=s1|s2|s3|s4|s5", []domain.Aspect{{Name: "stars", Choices: []string{"s1", "s2", "s3", "s4", "s5"}}}},
		{"a=b", []domain.Aspect{{Name: "a", Choices: []string{"b"}}}},
	}
	for _, tt := range tests {
		c, err := domain.ParseCatalog(tt.spec)
		if err != nil {
			t.Errorf("ParseCatalog(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(c.Aspects(), tt.want) {
			t.Errorf("ParseCatalog(%q) = %+v, want %+v", tt.spec, c.Aspects(), tt.want)
		}
		// String gives back a spec that parses to the same catalog.
		again, err := domain.ParseCatalog(c.String())
		if err != nil || !reflect.DeepEqual(again.Aspects(), c.Aspects()) {
			t.Errorf("ParseCatalog(%q).String() = %q does not parse back: %+v, %v", tt.spec, c.String(), again.Aspects(), err)
		}
	}
}

func TestParseCatalogRefuses(t *testing.T) {
	tests := []struct {
		spec    string
		message string // part of the error
	}{
		{";", "no aspects"},
		{" ; ; ", "no aspects"},
		{"overall", "want aspect=choice|choice"},
		{"overall=up|down;story", "want aspect=choice|choice"},
		{"overall=", `choice ""`},
		{"overall=up||down", `choice ""`},
		{"=up|down", `aspect ""`},
		{"Overall=up|down", `aspect "Overall"`},
		{"over_all=up|down", `aspect "over_all"`},
		{"over-all=up|down", `aspect "over-all"`},
		{"1st=up|down", `aspect "1st"`},
		{strings.Repeat("a", 33) + "=up", "want 1 to 32"},
		{"overall=Up|down", `choice "Up"`},
		{"overall=up|up", `choice "up" twice`},
		{"overall=up|down;overall=up|down", `aspect "overall" twice`},
		{"overall=up=down", `choice "up=down"`},
	}
	for _, tt := range tests {
		_, err := domain.ParseCatalog(tt.spec)
		if err == nil {
			t.Errorf("ParseCatalog(%q) succeeded", tt.spec)
			continue
		}
		if !strings.Contains(err.Error(), tt.message) {
			t.Errorf("ParseCatalog(%q): error %q does not mention %q", tt.spec, err, tt.message)
		}
	}
}

func TestNewCatalogRefuses(t *testing.T) {
	tests := []struct {
		name    string
		aspects []domain.Aspect
		message string
	}{
		{"nil", nil, "no aspects"},
		{"empty", []domain.Aspect{}, "no aspects"},
		{"no choices", []domain.Aspect{{Name: "overall"}}, "no choices"},
		{"empty choices", []domain.Aspect{{Name: "overall", Choices: []string{}}}, "no choices"},
		{"aspect empty", []domain.Aspect{{Name: "", Choices: []string{"up"}}}, `aspect ""`},
		{"aspect 33 long", []domain.Aspect{{Name: strings.Repeat("x", 33), Choices: []string{"up"}}}, "want 1 to 32"},
		{"aspect with space", []domain.Aspect{{Name: "sound track", Choices: []string{"up"}}}, `aspect "sound track"`},
		{"aspect twice", []domain.Aspect{{Name: "a", Choices: []string{"up"}}, {Name: "a", Choices: []string{"down"}}}, `aspect "a" twice`},
		{"choice with underscore", []domain.Aspect{{Name: "a", Choices: []string{"thumbs_up"}}}, `choice "thumbs_up"`},
		{"choice twice", []domain.Aspect{{Name: "a", Choices: []string{"up", "down", "up"}}}, `choice "up" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := domain.NewCatalog(tt.aspects)
			if err == nil {
				t.Fatalf("NewCatalog succeeded: %+v", c.Aspects())
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
			if len(c.Aspects()) != 0 {
				t.Errorf("a refused catalog has aspects: %+v", c.Aspects())
			}
		})
	}
}

func TestNewCatalogCopiesChoices(t *testing.T) {
	choices := []string{"up", "down"}
	c, err := domain.NewCatalog([]domain.Aspect{{Name: "overall", Choices: choices}})
	if err != nil {
		t.Fatal(err)
	}
	choices[0] = "sideways"
	if _, err := domain.DecodeSubmission([]byte(`{"voterId":"v","titleId":"t","votes":[{"aspect":"overall","choice":"up"}]}`), c, ""); err != nil {
		t.Errorf("changing the caller's slice changed the catalog: %v", err)
	}
}

func TestDefaultCatalog(t *testing.T) {
	want := "overall=up|down;story=up|down;acting=up|down;visuals=up|down;soundtrack=up|down"
	if got := domain.DefaultCatalog().String(); got != want {
		t.Errorf("DefaultCatalog() = %q, want %q", got, want)
	}
}
