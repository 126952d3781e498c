package domain

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// duplicateMember reports the path of the first object member, anywhere in
// body, whose name an earlier member of the same object already has, as in
// "voterId" or "votes[1].aspect". Names are compared after JSON unescaping,
// so "a" and "\u0061" are the same name. body must be valid JSON.
func duplicateMember(body []byte) (string, bool) {
	type frame struct {
		path    string
		object  bool
		names   map[string]bool
		wantKey bool   // an object waits for a member name
		key     string // an object's current member
		index   int    // an array's current element
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // numbers are skipped, never converted
	var stack []*frame
	// valueDone moves the innermost container past the value just read.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		if f := stack[len(stack)-1]; f.object {
			f.wantKey = true
		} else {
			f.index++
		}
	}
	childPath := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if !f.object {
			return f.path + "[" + strconv.Itoa(f.index) + "]"
		}
		if f.path == "" {
			return f.key
		}
		return f.path + "." + f.key
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; f.object && f.wantKey {
				if name, ok := tok.(string); ok {
					f.key, f.wantKey = name, false
					if f.names[name] {
						return childPath(), true
					}
					f.names[name] = true
					continue
				}
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{path: childPath(), object: true, names: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{path: childPath()})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		valueDone()
		if len(stack) == 0 {
			return "", false
		}
	}
}

// trimSpace trims the whitespace JSON itself allows between tokens: space,
// tab, line feed and carriage return. Unicode spaces such as U+00A0 stay and
// make the value invalid, rather than quietly vanishing.
func trimSpace(s string) string {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// parseRFC3339 parses an RFC 3339 date-time exactly as its section 5.6
// grammar has it, and returns it in UTC:
//
//	date-time = date-fullyear "-" date-month "-" date-mday "T" time-hour ":"
//	            time-minute ":" time-second ["." 1*DIGIT] ("Z" / ("+" / "-") time-hour ":" time-minute)
//
// "T" and "Z" may be lower case, as the RFC allows. time.Parse differs: it
// accepts a comma before the fraction and refuses second 60 and a lower-case
// "t" or "z". A leap second, 60, is accepted where one can fall, in the last
// minute of a UTC day; as Go's time has no leap seconds it comes back as the
// first second of the next day.
func parseRFC3339(s string) (time.Time, bool) {
	const minLen = len("2006-01-02T15:04:05Z")
	if len(s) < minLen {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	hour, minute, sec := num(11, 2), num(14, 2), num(17, 2)
	if s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || sec < 0 || sec > 60 {
		return time.Time{}, false
	}
	if day > time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day() {
		return time.Time{}, false
	}
	i, nsec := 19, 0
	if s[i] == '.' {
		i++
		start := i
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if i-start < 9 { // beyond nanoseconds, digits are dropped
				nsec = nsec*10 + int(s[i]-'0')
			}
		}
		if i == start {
			return time.Time{}, false
		}
		for n := i - start; n < 9; n++ {
			nsec *= 10
		}
	}
	var offset int // seconds east of UTC
	switch {
	case i == len(s)-1 && (s[i] == 'Z' || s[i] == 'z'):
	case i == len(s)-6 && (s[i] == '+' || s[i] == '-') && s[i+3] == ':':
		oh, om := num(i+1, 2), num(i+4, 2)
		if oh < 0 || oh > 23 || om < 0 || om > 59 {
			return time.Time{}, false
		}
		if offset = (oh*60 + om) * 60; s[i] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, min(sec, 59), nsec, time.UTC).Add(-time.Duration(offset) * time.Second)
	if sec == 60 {
		if t.Hour() != 23 || t.Minute() != 59 {
			return time.Time{}, false
		}
		t = t.Add(time.Second)
	}
	return t, true
}
