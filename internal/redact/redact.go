// Package redact keeps the secrets the daemon was given (tokens, API keys,
// passwords) out of every text it shows: errors, logs, the status page and
// the JSON API. Sources register each secret as they read it; an upstream
// that echoes request headers back in an error body then shows <secret>
// where the token was. Long upstream texts are cut.
package redact

import (
	"sort"
	"strings"
	"sync"

	"go.uber.org/zap/zapcore"
)

// Mask replaces a secret.
const Mask = "<secret>"

// MaxText is the longest error text shown; the rest of an upstream body is
// cut.
const MaxText = 1024

// minLen: shorter values are not treated as secrets (they would mask
// ordinary words).
const minLen = 6

var secrets struct {
	sync.RWMutex
	list []string // longest first, so that a secret containing another is masked whole
}

// Register adds a secret. Surrounding white space is ignored.
func Register(s string) {
	s = strings.TrimSpace(s)
	if len(s) < minLen {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	for _, x := range secrets.list {
		if x == s {
			return
		}
	}
	secrets.list = append(secrets.list, s)
	sort.Slice(secrets.list, func(i, j int) bool { return len(secrets.list[i]) > len(secrets.list[j]) })
}

// String masks every registered secret in s.
func String(s string) string {
	secrets.RLock()
	defer secrets.RUnlock()
	for _, x := range secrets.list {
		if strings.Contains(s, x) {
			s = strings.ReplaceAll(s, x, Mask)
		}
	}
	return s
}

// Text masks the secrets of s and cuts it to MaxText bytes.
func Text(s string) string {
	s = String(s)
	if len(s) > MaxText {
		cut := MaxText
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "… (cut)"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// Error is an error whose text is masked and cut; it still unwraps to the
// original for errors.Is.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }
func (e *Error) Unwrap() error { return e.err }

// Err masks an error's text (nil stays nil).
func Err(err error) error {
	if err == nil {
		return nil
	}
	if _, done := err.(*Error); done { //nolint:errorlint // this error itself, not one it wraps: an outer text may hold more to mask
		return err
	}
	return &Error{msg: Text(err.Error()), err: err}
}

// Core wraps a zap core so that every message and every string or error
// field is masked before it is written.
func Core(c zapcore.Core) zapcore.Core { return core{c} }

type core struct{ zapcore.Core }

func (c core) With(fields []zapcore.Field) zapcore.Core { return core{c.Core.With(mask(fields))} }

func (c core) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c core) Write(e zapcore.Entry, fields []zapcore.Field) error {
	e.Message = String(e.Message)
	return c.Core.Write(e, mask(fields))
}

func mask(fields []zapcore.Field) []zapcore.Field {
	out := make([]zapcore.Field, len(fields))
	for i, f := range fields {
		switch f.Type {
		case zapcore.StringType:
			f.String = String(f.String)
		case zapcore.ErrorType:
			if err, ok := f.Interface.(error); ok && err != nil {
				f = zapcore.Field{Key: f.Key, Type: zapcore.StringType, String: Text(err.Error())}
			}
		}
		out[i] = f
	}
	return out
}
