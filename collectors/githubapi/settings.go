// Package githubapi is the GitHub client layer shared by the sources that
// talk to GitHub (github, actions, coverage artifacts, billing): auth by
// token or GitHub App installation, GitHub Enterprise Server endpoints, at
// most max_concurrency requests at once, the primary and secondary rate
// limits honoured, conditional REST requests (ETag) whose 304s cost no rate
// limit, and counters of what was spent.
package githubapi

import (
	"fmt"
	"os"
	"strings"

	"github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Defaults.
const (
	DefaultBaseURL        = "https://api.github.com/"
	DefaultMaxConcurrency = 4
)

// Settings are the connection settings of a GitHub source. Secrets are
// never written here: they are named by file or environment variable.
type Settings struct {
	// TokenFile or TokenEnv hold a personal access token (or any token).
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	// App authenticates as a GitHub App installation instead.
	App *AppSettings `yaml:"app"`
	// BaseURL is the REST API root; GraphQLURL the GraphQL endpoint. For
	// GitHub Enterprise Server: https://HOST/api/v3/ and
	// https://HOST/api/graphql.
	BaseURL    string `yaml:"base_url"`
	GraphQLURL string `yaml:"graphql_url"`
	// MaxConcurrency bounds the requests in flight (default 4).
	MaxConcurrency int `yaml:"max_concurrency"`
}

// AppSettings authenticate as a GitHub App installation.
type AppSettings struct {
	AppID          int64  `yaml:"app_id"`
	InstallationID int64  `yaml:"installation_id"`
	PrivateKeyFile string `yaml:"private_key_file"`
}

// Validate applies defaults and checks the settings; errors name the field
// in the catalogue through at.
func (s *Settings) Validate(at func(field, format string, args ...any) error) error {
	switch {
	case s.App != nil && (s.TokenFile != "" || s.TokenEnv != ""):
		return at(".app", "set either a token (token_file, token_env) or app, not both")
	case s.App != nil:
		if s.App.AppID <= 0 || s.App.InstallationID <= 0 || s.App.PrivateKeyFile == "" {
			return at(".app", "app needs app_id, installation_id and private_key_file")
		}
	case s.TokenFile != "" && s.TokenEnv != "":
		return at(".token_file", "set token_file or token_env, not both")
	case s.TokenFile == "" && s.TokenEnv == "":
		return at("", "set token_file, token_env or app: GitHub's API needs credentials")
	}
	if s.BaseURL == "" {
		s.BaseURL = DefaultBaseURL
	}
	if !strings.HasSuffix(s.BaseURL, "/") {
		s.BaseURL += "/"
	}
	if s.GraphQLURL == "" {
		s.GraphQLURL = graphQLURLFor(s.BaseURL)
	}
	if s.MaxConcurrency == 0 {
		s.MaxConcurrency = DefaultMaxConcurrency
	}
	if s.MaxConcurrency < 0 || s.MaxConcurrency > 64 {
		return at(".max_concurrency", "max_concurrency %d is outside 1..64", s.MaxConcurrency)
	}
	return nil
}

// graphQLURLFor derives the GraphQL endpoint from a REST root: api.github.com
// serves /graphql; GitHub Enterprise Server serves /api/graphql beside
// /api/v3/.
func graphQLURLFor(base string) string {
	if strings.HasSuffix(base, "/api/v3/") {
		return strings.TrimSuffix(base, "v3/") + "graphql"
	}
	return base + "graphql"
}

// readToken reads a token from its file or environment variable. The
// message never contains the token.
func (s *Settings) readToken() (string, error) {
	if s.TokenEnv != "" {
		t := strings.TrimSpace(os.Getenv(s.TokenEnv))
		if t == "" {
			return "", fmt.Errorf("environment variable %s (token_env) is empty or unset", s.TokenEnv)
		}
		redact.Register(t)
		return t, nil
	}
	b, err := os.ReadFile(s.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token_file %s is empty", s.TokenFile)
	}
	redact.Register(t)
	return t, nil
}

// SettingsErrorf adapts kpi.Settings.Errorf for Validate.
func SettingsErrorf(s kpi.Settings) func(field, format string, args ...any) error {
	return func(field, format string, args ...any) error { return s.Errorf(field, format, args...) }
}
