package domain

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Aspect is one thing viewers vote on, with the choices they may give it.
type Aspect struct {
	Name    string
	Choices []string
}

// Catalog lists the aspects a submission may vote on. It is configuration:
// the zero value is unusable, DefaultCatalog gives the product's defaults.
type Catalog struct {
	aspects []Aspect
}

var catalogName = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// DefaultCatalog is overall, story, acting, visuals and soundtrack, each
// voted up or down.
func DefaultCatalog() Catalog {
	c, err := NewCatalog([]Aspect{
		{Name: "overall", Choices: []string{"up", "down"}},
		{Name: "story", Choices: []string{"up", "down"}},
		{Name: "acting", Choices: []string{"up", "down"}},
		{Name: "visuals", Choices: []string{"up", "down"}},
		{Name: "soundtrack", Choices: []string{"up", "down"}},
	})
	if err != nil {
		panic(err)
	}
	return c
}

// NewCatalog validates aspects: names and choices are lower-case letters and
// digits (they become DynamoDB attribute names), no aspect or choice twice,
// at least one choice each.
func NewCatalog(aspects []Aspect) (Catalog, error) {
	if len(aspects) == 0 {
		return Catalog{}, fmt.Errorf("catalog: no aspects")
	}
	seen := map[string]bool{}
	out := make([]Aspect, 0, len(aspects))
	for _, a := range aspects {
		if !catalogName.MatchString(a.Name) {
			return Catalog{}, fmt.Errorf("catalog: aspect %q: want 1 to 32 of a-z0-9, starting with a letter", a.Name)
		}
		if seen[a.Name] {
			return Catalog{}, fmt.Errorf("catalog: aspect %q twice", a.Name)
		}
		seen[a.Name] = true
		if len(a.Choices) == 0 {
			return Catalog{}, fmt.Errorf("catalog: aspect %q has no choices", a.Name)
		}
		choices := map[string]bool{}
		for _, c := range a.Choices {
			if !catalogName.MatchString(c) {
				return Catalog{}, fmt.Errorf("catalog: aspect %q: choice %q: want 1 to 32 of a-z0-9, starting with a letter", a.Name, c)
			}
			if choices[c] {
				return Catalog{}, fmt.Errorf("catalog: aspect %q: choice %q twice", a.Name, c)
			}
			choices[c] = true
		}
		out = append(out, Aspect{Name: a.Name, Choices: slices.Clone(a.Choices)})
	}
	return Catalog{aspects: out}, nil
}

// ParseCatalog reads the form "overall=up|down;story=up|down", as set in the
// VOTES_CATALOG environment variable. An empty string gives DefaultCatalog.
func ParseCatalog(s string) (Catalog, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultCatalog(), nil
	}
	var aspects []Aspect
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, choices, ok := strings.Cut(part, "=")
		if !ok {
			return Catalog{}, fmt.Errorf("catalog: %q: want aspect=choice|choice", part)
		}
		a := Aspect{Name: strings.TrimSpace(name)}
		for c := range strings.SplitSeq(choices, "|") {
			a.Choices = append(a.Choices, strings.TrimSpace(c))
		}
		aspects = append(aspects, a)
	}
	return NewCatalog(aspects)
}

// Aspects returns the catalog's aspects in their configured order.
func (c Catalog) Aspects() []Aspect { return c.aspects }

// String gives the catalog in the form ParseCatalog reads.
func (c Catalog) String() string {
	parts := make([]string, len(c.aspects))
	for i, a := range c.aspects {
		parts[i] = a.Name + "=" + strings.Join(a.Choices, "|")
	}
	return strings.Join(parts, ";")
}

// lookup returns the aspect and the choice, both normalised to lower case,
// or which of the two is unknown. Catalog names are ASCII, so only ASCII
// letters fold: strings.ToLower would take the Kelvin sign U+212A for "k".
func (c Catalog) lookup(aspect, choice string) (a Aspect, ch string, aspectOK, choiceOK bool) {
	aspect = asciiLower(trimSpace(aspect))
	choice = asciiLower(trimSpace(choice))
	for _, x := range c.aspects {
		if x.Name == aspect {
			return x, choice, true, slices.Contains(x.Choices, choice)
		}
	}
	return Aspect{}, choice, false, false
}

func (c Catalog) aspectNames() string { return strings.Join(c.AspectNames(), ", ") }

// AspectNames lists the aspects' names in their configured order.
func (c Catalog) AspectNames() []string {
	names := make([]string, len(c.aspects))
	for i, a := range c.aspects {
		names[i] = a.Name
	}
	return names
}

// Aspect returns the aspect named name exactly (names are lower case).
func (c Catalog) Aspect(name string) (Aspect, bool) {
	for _, a := range c.aspects {
		if a.Name == name {
			return a, true
		}
	}
	return Aspect{}, false
}
