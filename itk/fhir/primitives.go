package fhir

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// checkPrimitive returns "" when v is a valid STU3 value of type ty, else a
// message that names the type and the rule, never the value.
func checkPrimitive(ty, v string) string {
	if v == "" {
		return "a " + ty + " value must not be empty"
	}
	ok := true
	switch ty {
	case "boolean":
		ok = v == "true" || v == "false"
	case "integer":
		ok = validInteger(v, -1<<31, 1<<31-1)
	case "unsignedInt":
		ok = validInteger(v, 0, 1<<31-1)
	case "positiveInt":
		ok = validInteger(v, 1, 1<<31-1)
	case "decimal":
		ok = validDecimal(v)
	case "date":
		ok = ValidDate(v)
	case "dateTime":
		ok = ValidDateTime(v)
	case "instant":
		ok = ValidInstant(v)
	case "time":
		ok = validTime(v)
	case "id":
		ok = ValidID(v)
	case "code":
		ok = validCode(v)
	case "uri":
		ok = strings.IndexFunc(v, isSpaceRune) < 0
	case "oid":
		ok = validOID(v)
	case "base64Binary":
		if msg := CheckBase64(v); msg != "" {
			return msg
		}
	case "string", "markdown":
		ok = strings.TrimSpace(v) != "" && utf8.ValidString(v)
		if ok && strings.IndexFunc(v, badControl) >= 0 {
			return "a " + ty + " must not contain control characters other than tab, CR and LF"
		}
	}
	if !ok {
		return "not a valid " + ty + " (" + formatHint[ty] + ")"
	}
	return ""
}

var formatHint = map[string]string{
	"boolean":     "true or false",
	"integer":     "a 32-bit whole number",
	"unsignedInt": "a whole number >= 0",
	"positiveInt": "a whole number >= 1",
	"decimal":     "a decimal number",
	"date":        "YYYY, YYYY-MM or YYYY-MM-DD",
	"dateTime":    "YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss with a timezone",
	"instant":     "YYYY-MM-DDThh:mm:ss[.fff] with a timezone",
	"time":        "hh:mm:ss",
	"id":          "1-64 of A-Z a-z 0-9 - .",
	"code":        "no leading, trailing or repeated whitespace",
	"uri":         "no whitespace",
	"oid":         "urn:oid:…",
	"string":      "at least one non-whitespace character",
	"markdown":    "at least one non-whitespace character",
}

func isSpaceRune(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func badControl(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }

func validInteger(v string, lo, hi int64) bool {
	s := v
	if s != "" && (s[0] == '-' || s[0] == '+') {
		s = s[1:]
	}
	if s == "" || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n >= lo && n <= hi
}

func validDecimal(v string) bool {
	i := 0
	if i < len(v) && v[i] == '-' {
		i++
	}
	j := i
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == j || (i-j > 1 && v[j] == '0') {
		return false
	}
	if i < len(v) && v[i] == '.' {
		i++
		k := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == k {
			return false
		}
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		k := i
		for i < len(v) && v[i] >= '0' && v[i] <= '9' {
			i++
		}
		if i == k {
			return false
		}
	}
	return i == len(v)
}

func digits(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func daysIn(year, month int) int {
	switch month {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// ValidDate checks a FHIR date: YYYY, YYYY-MM or YYYY-MM-DD, a real calendar date.
func ValidDate(v string) bool {
	switch len(v) {
	case 4, 7, 10:
	default:
		return false
	}
	y, ok := digits(v[:4])
	if !ok || y == 0 {
		return false
	}
	if len(v) == 4 {
		return true
	}
	if v[4] != '-' {
		return false
	}
	m, ok := digits(v[5:7])
	if !ok || m < 1 || m > 12 {
		return false
	}
	if len(v) == 7 {
		return true
	}
	if v[7] != '-' {
		return false
	}
	d, ok := digits(v[8:10])
	return ok && d >= 1 && d <= daysIn(y, m)
}

// validTime checks hh:mm:ss(.f+)?
func validTime(v string) bool {
	if len(v) < 8 || v[2] != ':' || v[5] != ':' {
		return false
	}
	h, ok1 := digits(v[:2])
	m, ok2 := digits(v[3:5])
	s, ok3 := digits(v[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 {
		return false
	}
	rest := v[8:]
	if rest == "" {
		return true
	}
	if rest[0] != '.' {
		return false
	}
	_, ok := digits(rest[1:])
	return ok
}

func validZone(z string) bool {
	if z == "Z" {
		return true
	}
	if len(z) != 6 || (z[0] != '+' && z[0] != '-') || z[3] != ':' {
		return false
	}
	h, ok1 := digits(z[1:3])
	m, ok2 := digits(z[4:6])
	return ok1 && ok2 && h <= 14 && m <= 59
}

// splitTimeZone splits "hh:mm:ss.fff+01:00" into time and zone.
func splitTimeZone(v string) (string, string) {
	if strings.HasSuffix(v, "Z") {
		return v[:len(v)-1], "Z"
	}
	if len(v) >= 6 && (v[len(v)-6] == '+' || v[len(v)-6] == '-') {
		return v[:len(v)-6], v[len(v)-6:]
	}
	return v, ""
}

// ValidDateTime checks a FHIR dateTime: a date, or a full date and time
// with a timezone.
func ValidDateTime(v string) bool {
	d, t, hasT := strings.Cut(v, "T")
	if !hasT {
		return ValidDate(v)
	}
	if len(d) != 10 || !ValidDate(d) {
		return false
	}
	tm, zone := splitTimeZone(t)
	return zone != "" && validZone(zone) && validTime(tm)
}

// ValidInstant checks a FHIR instant: YYYY-MM-DDThh:mm:ss(.f+)? with a timezone.
func ValidInstant(v string) bool {
	_, t, hasT := strings.Cut(v, "T")
	return hasT && len(t) >= 9 && ValidDateTime(v)
}

// ValidID checks a FHIR id: [A-Za-z0-9\-\.]{1,64}.
func ValidID(v string) bool {
	if len(v) < 1 || len(v) > 64 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

func validCode(v string) bool {
	if isSpaceRune(rune(v[0])) || isSpaceRune(rune(v[len(v)-1])) {
		return false
	}
	for i := 1; i < len(v); i++ {
		if isSpaceRune(rune(v[i])) && isSpaceRune(rune(v[i-1])) {
			return false
		}
	}
	return true
}

func validOID(v string) bool {
	rest, ok := strings.CutPrefix(v, "urn:oid:")
	if !ok || rest == "" || rest[0] < '0' || rest[0] > '2' {
		return false
	}
	for _, part := range strings.Split(rest, ".") {
		if _, ok := digits(part); !ok || (len(part) > 1 && part[0] == '0') {
			return false
		}
	}
	return true
}

// base64Class: 1 = alphabet, 2 = '=', 3 = whitespace, 0 = invalid.
var base64Class = func() (t [256]byte) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = 1
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = 1
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = 1
	}
	t['+'], t['/'] = 1, 1
	t['='] = 2
	t[' '], t['\t'], t['\n'], t['\r'] = 3, 3, 3, 3
	return t
}()

// CheckBase64 validates standard base64 (whitespace allowed, as the STU3
// base64Binary regex allows) without decoding it. It returns "" if valid.
func CheckBase64(v string) string {
	n, pad := 0, 0
	for i := 0; i < len(v); i++ {
		switch base64Class[v[i]] {
		case 1:
			if pad > 0 {
				return "base64 has data after '=' padding"
			}
			n++
		case 2:
			pad++
			if pad > 2 {
				return "base64 has too much '=' padding"
			}
		case 3:
		default:
			return "not valid base64 (character outside the base64 alphabet at position " + strconv.Itoa(i) + ")"
		}
	}
	if n == 0 {
		return "base64 content is empty"
	}
	if (n+pad)%4 != 0 {
		return "base64 length is not a multiple of 4"
	}
	if pad > 0 && (n%4 == 0 || 4-n%4 != pad) {
		return "base64 padding does not match the data length"
	}
	return ""
}
