package domain

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// duplicateMember reports the path of the first object member, anywhere in
// body, whose name an earlier member of the same object already has, as in
// "voterId" or "votes[1].aspect". Names are compared as encoding/json
// decodes them, so "a" and "\u0061" are the same name. body must be one
// valid JSON value: it is scanned byte by byte, as the receiver runs this
// on every request and json.Decoder's tokens cost twice the whole decode.
func duplicateMember(body []byte) (string, bool) {
	type frame struct {
		object  bool
		wantKey bool     // an object waits for a member name
		names   []string // an object's member names so far, the current last
		index   int      // an array's current element
	}
	var stack []frame
	for i := 0; i < len(body); i++ {
		switch body[i] {
		case '{':
			stack = append(stack, frame{object: true, wantKey: true})
		case '[':
			stack = append(stack, frame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "", false
			}
		case ',':
			if f := &stack[len(stack)-1]; f.object {
				f.wantKey = true
			} else {
				f.index++
			}
		case '"':
			start, plain := i, true
			for i++; i < len(body) && body[i] != '"'; i++ {
				if body[i] == '\\' {
					plain = false
					i++
				} else if body[i] >= utf8.RuneSelf {
					plain = false // encoding/json turns invalid UTF-8 into U+FFFD
				}
			}
			if len(stack) == 0 {
				return "", false // a lone string
			}
			f := &stack[len(stack)-1]
			if !f.object || !f.wantKey {
				continue // a string value
			}
			f.wantKey = false
			name := string(body[start+1 : i])
			if !plain {
				_ = json.Unmarshal(body[start:i+1], &name)
			}
			dup := slices.Contains(f.names, name)
			f.names = append(f.names, name)
			if dup {
				return memberPath(len(stack), func(k int) (bool, string, int) {
					if f := stack[k]; f.object {
						return true, f.names[len(f.names)-1], 0
					}
					return false, "", stack[k].index
				}), true
			}
		}
	}
	return "", false
}

// memberPath names the place the scanner is at, depth containers deep:
// "votes[1].aspect". at gives a container's kind and current position.
func memberPath(depth int, at func(k int) (object bool, name string, index int)) string {
	var b strings.Builder
	for k := range depth {
		object, name, index := at(k)
		switch {
		case !object:
			b.WriteString("[" + strconv.Itoa(index) + "]")
		case k > 0:
			b.WriteString("." + name)
		default:
			b.WriteString(name)
		}
	}
	return b.String()
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
