package fetch

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseDotenv reads the docker compose dialect of dotenv
// (https://docs.docker.com/compose/env-file/), as compose-go's parser
// implements it:
//
//   - KEY=VALUE, an optional "export " prefix, spaces around '=' allowed;
//   - full-line '#' comments, blank lines, CRLF line ends, a leading UTF-8 BOM;
//   - unquoted values end at the line end or at " #" and are trimmed;
//   - single-quoted values are literal, except \' for a quote; they may span lines;
//   - double-quoted values may span lines and know \n \r \t \a \b \f \v \\ \" \$
//     and \0 followed by three octal digits; any other backslash stays as it is;
//   - after a closing quote only blanks and a comment may follow.
//
// Departures from compose, each because values are secrets that must arrive
// byte for byte and a misread file must stop the start rather than guess:
//
//   - no interpolation: "${VAR}", "$VAR" and "$$" stay literal (compose would
//     substitute them from the environment). \$ still gives "$", so files
//     written for compose with escaped dollars read the same;
//   - a line without '=' is an error (compose would copy KEY from the
//     environment);
//   - text after a closing quote is an error (compose starts a new statement);
//   - key names are only checked for what would break this syntax (no blanks,
//     control characters, quotes or '='): names like "SECRET_KEY?" or "ÜBER"
//     are accepted so the name policy can rename or reject them with a report.
//
// A repeated key keeps the position of its first appearance and the value of
// its last, as compose's map does. Errors wrap ErrData and carry the file
// name and line, never any text of the file, since that text may be a secret.
func ParseDotenv(name string, data []byte) ([]Secret, error) {
	p := dotenvParser{src: string(trimBOM(data)), line: 1}
	var out []Secret
	seen := make(map[string]int)
	for {
		p.skipBlankAndComments()
		if p.i >= len(p.src) {
			return out, nil
		}
		key, value, err := p.statement()
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%w", ErrData, name, err)
		}
		if at, ok := seen[key]; ok {
			out[at].Value = value
			continue
		}
		seen[key] = len(out)
		out = append(out, Secret{Key: key, Value: value, Source: "file:" + name})
	}
}

type dotenvParser struct {
	src  string
	i    int
	line int
}

// lineError carries only a line number and a fixed description: nothing
// read from the file may end up in an error.
type lineError struct {
	line int
	msg  string
}

func (e *lineError) Error() string { return fmt.Sprintf("%d: %s", e.line, e.msg) }

func (p *dotenvParser) fail(line int, msg string) error { return &lineError{line, msg} }

func (p *dotenvParser) skipBlankAndComments() {
	for p.i < len(p.src) {
		switch c := p.src[p.i]; c {
		case '\n':
			p.line++
			p.i++
		case ' ', '\t', '\r', '\v', '\f':
			p.i++
		case '#':
			p.skipToLineEnd()
		default:
			// compose skips any Unicode space before a statement.
			if c >= utf8.RuneSelf {
				if r, size := utf8.DecodeRuneInString(p.src[p.i:]); unicode.IsSpace(r) {
					p.i += size
					continue
				}
			}
			return
		}
	}
}

// skipToLineEnd leaves p.i on the '\n' (or at the end) so the caller's blank
// skipping counts the line.
func (p *dotenvParser) skipToLineEnd() {
	if j := strings.IndexByte(p.src[p.i:], '\n'); j >= 0 {
		p.i += j
	} else {
		p.i = len(p.src)
	}
}

// skipInlineSpace skips the blanks compose trims between '=' and a value:
// its isSpace set, which includes NEL and NO-BREAK SPACE but never '\n'.
func (p *dotenvParser) skipInlineSpace() {
	for p.i < len(p.src) {
		switch c := p.src[p.i]; c {
		case ' ', '\t', '\r', '\v', '\f':
			p.i++
		case 0xC2:
			if p.i+1 < len(p.src) && (p.src[p.i+1] == 0x85 || p.src[p.i+1] == 0xA0) {
				p.i += 2
				continue
			}
			return
		default:
			return
		}
	}
}

func (p *dotenvParser) statement() (key, value string, err error) {
	start := p.line
	if rest, ok := strings.CutPrefix(p.src[p.i:], "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
		p.i += len("export")
		for p.i < len(p.src) && (p.src[p.i] == ' ' || p.src[p.i] == '\t') {
			p.i++
		}
	}
	lineEnd := strings.IndexByte(p.src[p.i:], '\n')
	if lineEnd < 0 {
		lineEnd = len(p.src) - p.i
	}
	eq := strings.IndexByte(p.src[p.i:p.i+lineEnd], '=')
	if eq < 0 {
		return "", "", p.fail(start, "expected KEY=VALUE (a line without '=' is not read from the environment here)")
	}
	key = strings.TrimRight(p.src[p.i:p.i+eq], " \t")
	if msg := dotenvKeyProblem(key); msg != "" {
		return "", "", p.fail(start, msg)
	}
	p.i += eq + 1
	p.skipInlineSpace()
	if p.i >= len(p.src) {
		return key, "", nil
	}
	switch q := p.src[p.i]; q {
	case '\'', '"':
		value, ok := p.quoted(q)
		if !ok {
			kind := "single"
			if q == '"' {
				kind = "double"
			}
			return "", "", p.fail(start, "unterminated "+kind+"-quoted value")
		}
		if err := p.afterQuote(); err != nil {
			return "", "", err
		}
		return key, value, nil
	default:
		return key, p.unquoted(), nil
	}
}

// DotenvKeyProblem says why key cannot be written as a dotenv key that this
// parser reads back, or "" when it can. The rules are the syntax's, not a
// name policy: blanks, control characters, quotes and '=' would end or
// confuse the key, and a leading '#' makes a comment.
func DotenvKeyProblem(key string) string { return dotenvKeyProblem(key) }

func dotenvKeyProblem(key string) string {
	if key == "" {
		return "empty key"
	}
	if key[0] == '#' {
		return "key starts with '#'"
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c <= ' ' || c == 0x7F:
			return "key contains a blank or a control character"
		case c == '"' || c == '\'':
			return "key contains a quote"
		case c == '=':
			return "key contains '='"
		case c >= utf8.RuneSelf:
			if r, _ := utf8.DecodeRuneInString(key[i:]); unicode.IsSpace(r) {
				return "key contains a blank or a control character"
			}
		}
	}
	return ""
}

func (p *dotenvParser) unquoted() string {
	end := strings.IndexByte(p.src[p.i:], '\n')
	if end < 0 {
		end = len(p.src) - p.i
	}
	v := p.src[p.i : p.i+end]
	p.i += end
	v, _, _ = strings.Cut(v, " #")
	return strings.TrimRightFunc(v, unicode.IsSpace)
}

// quoted reads a quoted value starting at the opening quote q. A backslash
// before q stands for q; in double quotes the shell escapes compose knows are
// decoded too; every other backslash is kept with the byte after it.
func (p *dotenvParser) quoted(q byte) (string, bool) {
	p.i++
	var b strings.Builder
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), true
		case c == '\\':
			if p.i+1 >= len(p.src) {
				return "", false
			}
			n := p.src[p.i+1]
			p.i += 2
			switch {
			case n == q:
				b.WriteByte(q)
			case q == '"':
				p.doubleEscape(&b, n)
			default:
				if n == '\n' {
					p.line++
				}
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		default:
			if c == '\n' {
				p.line++
			}
			b.WriteByte(c)
			p.i++
		}
	}
	return "", false
}

// doubleEscape decodes the escape whose backslash and byte n were consumed.
// It follows compose-go's expandEscapes: \0 with exactly three octal digits up
// to 0377 is that code point written as UTF-8 (so \0377 is two bytes, as in
// compose); any other \0 loses its '0' (\01 reads as \1, a lone \0 as a
// backslash), because compose rewrites \0 to \ before decoding and keeps the
// rewritten text when decoding fails; an escape it does not know stays literal.
func (p *dotenvParser) doubleEscape(b *strings.Builder, n byte) {
	switch n {
	case '\\':
		b.WriteByte('\\')
	case '$':
		b.WriteByte('$')
	case 'a':
		b.WriteByte('\a')
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
	case 'v':
		b.WriteByte('\v')
	case '0':
		j := p.i
		for j < len(p.src) && j-p.i < 3 && p.src[j] >= '0' && p.src[j] <= '9' {
			j++
		}
		digits := p.src[p.i:j]
		p.i = j
		if v, ok := octal3(digits); ok {
			b.WriteString(string(rune(v)))
			return
		}
		b.WriteByte('\\')
		b.WriteString(digits)
	default:
		if n == '\n' {
			p.line++
		}
		b.WriteByte('\\')
		b.WriteByte(n)
	}
}

func octal3(d string) (int, bool) {
	if len(d) != 3 {
		return 0, false
	}
	v := 0
	for i := 0; i < 3; i++ {
		if d[i] > '7' {
			return 0, false
		}
		v = v*8 + int(d[i]-'0')
	}
	return v, v <= 0377
}

func (p *dotenvParser) afterQuote() error {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\r', '\v', '\f':
			p.i++
		case '\n':
			return nil
		case '#':
			p.skipToLineEnd()
			return nil
		default:
			return p.fail(p.line, "unexpected text after the closing quote (a quote inside the value must be escaped)")
		}
	}
	return nil
}

var bom = []byte{0xEF, 0xBB, 0xBF}

func trimBOM(data []byte) []byte {
	if len(data) >= 3 && data[0] == bom[0] && data[1] == bom[1] && data[2] == bom[2] {
		return data[3:]
	}
	return data
}

// firstInvalidUTF8Line returns the line holding the first byte that is not
// UTF-8, or 0 when src is valid.
func firstInvalidUTF8Line(src []byte) int {
	line := 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRune(src[i:])
		if r == utf8.RuneError && size <= 1 {
			return line
		}
		if r == '\n' {
			line++
		}
		i += size
	}
	return 0
}
