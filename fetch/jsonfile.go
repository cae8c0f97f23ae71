package fetch

import (
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseJSON reads a flat JSON object whose values are all strings, the shape
// `phase secrets export --format json` writes (Python's json.dumps: non-ASCII
// as \u escapes, surrogate pairs for emoji) and `phase-shim export --format
// json` writes (Go's encoder: <, > and & as \u escapes, UTF-8 kept).
//
// A repeated key keeps the position of its first appearance and the value of
// its last, as Python's json.load, JavaScript's JSON.parse and Go's
// encoding/json do. It is hand-written rather than encoding/json because
// encoding/json silently replaces invalid UTF-8 and lone surrogate escapes
// with U+FFFD, which would hand the command a different secret than the file
// holds; here both are errors. Errors wrap ErrData and name the file, the line
// and (for a value) the key, never any value.
func ParseJSON(name string, data []byte) ([]Secret, error) {
	src := trimBOM(data)
	if line := firstInvalidUTF8Line(src); line > 0 {
		return nil, fmt.Errorf("%w: %s:%d: not valid UTF-8", ErrData, name, line)
	}
	p := jsonParser{src: string(src), line: 1}
	out, err := p.object(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %s:%w", ErrData, name, err)
	}
	return out, nil
}

type jsonParser struct {
	src  string
	i    int
	line int
}

func (p *jsonParser) fail(msg string) error { return &lineError{p.line, msg} }

func (p *jsonParser) space() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case '\n':
			p.line++
		case ' ', '\t', '\r':
		default:
			return
		}
		p.i++
	}
}

func (p *jsonParser) object(name string) ([]Secret, error) {
	p.space()
	if p.i >= len(p.src) || p.src[p.i] != '{' {
		return nil, p.fail("want a JSON object of strings")
	}
	p.i++
	out := []Secret{}
	seen := make(map[string]int)
	p.space()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		return out, p.end()
	}
	for {
		p.space()
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return nil, p.fail("want a string key")
		}
		key, err := p.str("in a key")
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return nil, p.fail(fmt.Sprintf("key %q: want ':'", key))
		}
		p.i++
		p.space()
		if p.i >= len(p.src) {
			return nil, p.fail(fmt.Sprintf("key %q: missing value", key))
		}
		if p.src[p.i] != '"' {
			return nil, p.fail(fmt.Sprintf("key %q: value is %s, want a string (only a flat object of strings is read)", key, jsonKind(p.src[p.i])))
		}
		value, err := p.str(fmt.Sprintf("in the value of key %q", key))
		if err != nil {
			return nil, err
		}
		if at, ok := seen[key]; ok {
			out[at].Value = value
		} else {
			seen[key] = len(out)
			out = append(out, Secret{Key: key, Value: value, Source: "file:" + name})
		}
		p.space()
		if p.i >= len(p.src) {
			return nil, p.fail("unexpected end of file, want ',' or '}'")
		}
		switch p.src[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return out, p.end()
		default:
			return nil, p.fail(fmt.Sprintf("after key %q: want ',' or '}'", key))
		}
	}
}

func (p *jsonParser) end() error {
	p.space()
	if p.i < len(p.src) {
		return p.fail("unexpected text after the closing '}'")
	}
	return nil
}

func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	}
	return "not JSON"
}

// str decodes the JSON string at p.i (which is '"'). where says what the
// string is, for errors; it never quotes the string's own text.
func (p *jsonParser) str(where string) (string, error) {
	p.i++
	var b strings.Builder
	for {
		// Copy the run up to the next quote, backslash or control byte at once:
		// values can be long (PEM files, 100 KB blobs).
		j := p.i
		for j < len(p.src) && p.src[j] != '"' && p.src[j] != '\\' && p.src[j] >= 0x20 {
			j++
		}
		b.WriteString(p.src[p.i:j])
		p.i = j
		if p.i >= len(p.src) {
			return "", p.fail("unterminated string " + where)
		}
		switch c := p.src[p.i]; {
		case c == '"':
			p.i++
			return b.String(), nil
		case c < 0x20:
			return "", p.fail("control character not escaped " + where)
		}
		// A backslash.
		if p.i+1 >= len(p.src) {
			return "", p.fail("unterminated string " + where)
		}
		e := p.src[p.i+1]
		p.i += 2
		switch e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.fail(`bad \u escape ` + where)
			}
			if utf16.IsSurrogate(r) {
				lo := rune(-1)
				if r < 0xDC00 && strings.HasPrefix(p.src[p.i:], `\u`) {
					p.i += 2
					lo, ok = p.hex4()
					if !ok {
						return "", p.fail(`bad \u escape ` + where)
					}
				}
				r = utf16.DecodeRune(r, lo)
				if r == utf8.RuneError {
					return "", p.fail("lone UTF-16 surrogate " + where + " (not a character; it has no UTF-8 form)")
				}
			}
			b.WriteRune(r)
		default:
			return "", p.fail("unknown escape " + where)
		}
	}
}

func (p *jsonParser) hex4() (rune, bool) {
	if p.i+4 > len(p.src) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.src[p.i : p.i+4]) {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	p.i += 4
	return r, true
}
