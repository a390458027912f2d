package coverage

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// tokenSource is what the report parsers read XML through: encoding/xml's
// decoder, or xmlScanner where speed matters.
type tokenSource interface {
	Token() (xml.Token, error)
	InputPos() (line, column int)
	InputOffset() int64
}

// xmlScanner is a small XML tokenizer for the reports the source reads most
// (Cobertura): start and end elements with their attributes, nothing else.
// Text, comments, processing instructions, CDATA and the DOCTYPE (with any
// internal subset, never expanded) are skipped. It checks what the parsers
// rely on — tags well formed, every end tag matching its start tag, the
// five predefined entities and character references in attribute values,
// UTF-8 — and reports errors as *xml.SyntaxError with the line, in
// encoding/xml's words. encoding/xml allocates every name and value of
// every token; this reuses its attribute slice and interns names, which is
// what makes Cobertura fast enough to read at the rate reports arrive.
type xmlScanner struct {
	r      *bufio.Reader
	line   int
	offset int64
	stack  []string
	names  map[string]string
	attrs  []xml.Attr
	buf    []byte
	max    int64
	closed *xml.EndElement // the end of a self-closing element, due next
}

func newXMLScanner(rd io.Reader, maxToken int64) *xmlScanner {
	return &xmlScanner{r: bufio.NewReaderSize(rd, 256<<10), line: 1, names: map[string]string{}, max: maxToken}
}

func (s *xmlScanner) InputPos() (int, int) { return s.line, 1 }
func (s *xmlScanner) InputOffset() int64   { return s.offset }

func (s *xmlScanner) syntax(format string, args ...any) error {
	return &xml.SyntaxError{Msg: fmt.Sprintf(format, args...), Line: s.line}
}

// until reads up to and including delim, counting lines; the slice is valid
// until the next read. A run longer than the token bound is an error.
func (s *xmlScanner) until(delim byte) ([]byte, error) {
	b, err := s.r.ReadSlice(delim)
	if errors.Is(err, bufio.ErrBufferFull) {
		s.buf = append(s.buf[:0], b...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if int64(len(s.buf)) > s.max {
				return nil, limitError("an XML token of more than %d bytes (limits.max_token_bytes)", s.max)
			}
			b, err = s.r.ReadSlice(delim)
			s.buf = append(s.buf, b...)
		}
		b = s.buf
	}
	s.offset += int64(len(b))
	s.line += bytes.Count(b, []byte{'\n'})
	return b, err
}

func (s *xmlScanner) intern(b []byte) string {
	if n, ok := s.names[string(b)]; ok {
		return n
	}
	n := string(b)
	if len(s.names) < 1024 {
		s.names[n] = n
	}
	return n
}

func (s *xmlScanner) Token() (xml.Token, error) {
	if s.closed != nil {
		e := *s.closed
		s.closed = nil
		s.stack = s.stack[:len(s.stack)-1]
		return e, nil
	}
	for {
		// Text up to the next tag is skipped.
		if _, err := s.until('<'); err != nil {
			if errors.Is(err, io.EOF) {
				if len(s.stack) > 0 {
					return nil, s.syntax("unexpected EOF")
				}
				return nil, io.EOF
			}
			return nil, err
		}
		head, err := s.r.Peek(1)
		if err != nil {
			return nil, s.eof(err)
		}
		switch head[0] {
		case '?':
			if err := s.skipTo("?>"); err != nil {
				return nil, err
			}
			continue
		case '!':
			if err := s.skipMarkup(); err != nil {
				return nil, err
			}
			continue
		case '/':
			tag, err := s.tag()
			if err != nil {
				return nil, err
			}
			name := bytes.TrimRight(tag[1:len(tag)-1], " \t\r\n")
			if len(s.stack) == 0 {
				return nil, s.syntax("unexpected end element </%s>", name)
			}
			top := s.stack[len(s.stack)-1]
			if string(name) != top {
				return nil, s.syntax("element <%s> closed by </%s>", top, name)
			}
			s.stack = s.stack[:len(s.stack)-1]
			return xml.EndElement{Name: xml.Name{Local: top}}, nil
		}
		tag, err := s.tag()
		if err != nil {
			return nil, err
		}
		return s.start(tag[:len(tag)-1])
	}
}

// eof turns a reader's end into XML's "unexpected EOF"; other errors (a
// limit of the reader) pass as they are.
func (s *xmlScanner) eof(err error) error {
	if errors.Is(err, io.EOF) {
		return s.syntax("unexpected EOF")
	}
	return err
}

// tag reads a tag up to its '>', which may stand inside a quoted value.
func (s *xmlScanner) tag() ([]byte, error) {
	b, err := s.until('>')
	if err != nil {
		return nil, s.eof(err)
	}
	q := quoteState(0, b)
	if q == 0 {
		return b, nil
	}
	acc := append([]byte(nil), b...)
	for q != 0 {
		more, err := s.until('>')
		if err != nil {
			return nil, s.eof(err)
		}
		q = quoteState(q, more)
		acc = append(acc, more...)
		if int64(len(acc)) > s.max {
			return nil, limitError("an XML token of more than %d bytes (limits.max_token_bytes)", s.max)
		}
	}
	return acc, nil
}

// quoteState is the open quote after b, starting with q open (0: none).
func quoteState(q byte, b []byte) byte {
	for _, c := range b {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '"' || c == '\'':
			q = c
		}
	}
	return q
}

// skipTo skips past end.
func (s *xmlScanner) skipTo(end string) error {
	last := end[len(end)-1]
	var tail []byte
	for {
		b, err := s.until(last)
		if err != nil {
			return s.eof(err)
		}
		tail = append(tail, b...)
		if bytes.HasSuffix(tail, []byte(end)) {
			return nil
		}
		if len(tail) > len(end) {
			tail = tail[len(tail)-len(end):]
		}
	}
}

// skipMarkup skips a comment, CDATA section or DOCTYPE (with its internal
// subset, whose declarations are never applied).
func (s *xmlScanner) skipMarkup() error {
	head, _ := s.r.Peek(8)
	switch {
	case bytes.HasPrefix(head, []byte("!--")):
		return s.skipTo("-->")
	case bytes.HasPrefix(head, []byte("![CDATA[")):
		return s.skipTo("]]>")
	}
	depth := 0
	for {
		c, err := s.r.ReadByte()
		if err != nil {
			return s.eof(err)
		}
		s.offset++
		switch c {
		case '\n':
			s.line++
		case '[':
			depth++
		case ']':
			depth--
		case '>':
			if depth <= 0 {
				return nil
			}
		}
	}
}

// start parses "name attr="v" …[/]" (the text between < and >).
func (s *xmlScanner) start(b []byte) (xml.Token, error) {
	self := false
	if n := len(b); n > 0 && b[n-1] == '/' {
		self, b = true, b[:n-1]
	}
	i := 0
	for i < len(b) && !isSpace(b[i]) {
		i++
	}
	if i == 0 {
		return nil, s.syntax("expected element name after <")
	}
	name := s.intern(b[:i])
	s.attrs = s.attrs[:0]
	for {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
		if i == len(b) {
			break
		}
		j := i
		for j < len(b) && b[j] != '=' && !isSpace(b[j]) {
			j++
		}
		an := b[i:j]
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) || b[j] != '=' || len(an) == 0 {
			return nil, s.syntax("attribute name without = in element")
		}
		j++
		for j < len(b) && isSpace(b[j]) {
			j++
		}
		if j >= len(b) || b[j] != '"' && b[j] != '\'' {
			return nil, s.syntax("unquoted or missing attribute value in element")
		}
		q := b[j]
		k := bytes.IndexByte(b[j+1:], q)
		if k < 0 {
			return nil, s.syntax("unexpected EOF")
		}
		raw := b[j+1 : j+1+k]
		val, err := s.value(raw)
		if err != nil {
			return nil, err
		}
		s.attrs = append(s.attrs, xml.Attr{Name: xml.Name{Local: s.intern(an)}, Value: val})
		i = j + 1 + k + 1
	}
	s.stack = append(s.stack, name)
	e := xml.StartElement{Name: xml.Name{Local: name}, Attr: s.attrs}
	if self {
		s.closed = &xml.EndElement{Name: xml.Name{Local: name}}
	}
	return e, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// value decodes an attribute value: the predefined entities and character
// references; anything else after & is an error, as in encoding/xml.
func (s *xmlScanner) value(raw []byte) (string, error) {
	if !utf8.Valid(raw) {
		return "", s.syntax("invalid UTF-8")
	}
	if bytes.IndexByte(raw, '&') < 0 {
		if bytes.IndexByte(raw, '<') >= 0 {
			return "", s.syntax("unescaped < inside quoted string")
		}
		return string(raw), nil
	}
	out := make([]byte, 0, len(raw))
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '&')
		if i < 0 {
			out = append(out, raw...)
			break
		}
		out = append(out, raw[:i]...)
		raw = raw[i+1:]
		j := bytes.IndexByte(raw, ';')
		if j < 0 {
			return "", s.syntax("invalid character entity &%s", truncate(raw))
		}
		ent := raw[:j]
		raw = raw[j+1:]
		switch string(ent) {
		case "amp":
			out = append(out, '&')
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "quot":
			out = append(out, '"')
		case "apos":
			out = append(out, '\'')
		default:
			if len(ent) > 1 && ent[0] == '#' {
				var n uint64
				var err error
				if ent[1] == 'x' {
					n, err = strconv.ParseUint(string(ent[2:]), 16, 32)
				} else {
					n, err = strconv.ParseUint(string(ent[1:]), 10, 32)
				}
				if err == nil && utf8.ValidRune(rune(n)) {
					out = utf8.AppendRune(out, rune(n))
					continue
				}
			}
			return "", s.syntax("invalid character entity &%s;", truncate(ent))
		}
	}
	return string(out), nil
}
