// Package github is the source type "github": pull-request, issue,
// contributor, community, delivery and security measurements of a scope of
// repositories, computed exactly as the README defines them, frugally with
// GitHub's API.
package github

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "github"

// Defaults of the settings.
var (
	DefaultWindow        = 30 * 24 * time.Hour
	DefaultFullResync    = 7 * 24 * time.Hour
	DefaultBugLabels     = []string{"bug"}
	DefaultEscapeLabels  = []string{"production", "escaped"}
	DefaultFeatureLabels = []string{"feature", "enhancement"}
	DefaultDocGlobs      = []string{"docs/**", "**/*.md", "**/*.rst", "**/*.adoc"}
)

// Settings of a github source.
type Settings struct {
	githubapi.Settings `yaml:",inline"`
	githubapi.Scope    `yaml:",inline"`

	// CoreTeam lists logins and teams ("@org/team"); CoreTeamSlug (org/team)
	// adds one more team.
	CoreTeam     []string `yaml:"core_team"`
	CoreTeamSlug string   `yaml:"core_team_slug"`
	// Bots are logins treated as bots besides accounts of type Bot and
	// logins ending in [bot].
	Bots []string `yaml:"bots"`

	Window        string   `yaml:"window"`
	FullResync    string   `yaml:"full_resync"`
	BugLabels     []string `yaml:"bug_labels"`
	EscapeLabels  []string `yaml:"escape_labels"`
	FeatureLabels []string `yaml:"feature_labels"`
	DocGlobs      []string `yaml:"doc_globs"`

	window, fullResync time.Duration
	coreLogins         []string
	coreTeams          []string // org/team
}

func (s *Settings) validate(src kpi.Source) error {
	at := githubapi.SettingsErrorf(src.Settings)
	if err := s.Settings.Validate(at); err != nil {
		return err
	}
	if err := s.Scope.Validate(src.Name, at); err != nil {
		return err
	}
	if s.CoreTeamSlug != "" && !strings.Contains(s.CoreTeamSlug, "/") {
		return at(".core_team_slug", "core_team_slug %q is not org/team", s.CoreTeamSlug)
	}
	s.coreLogins, s.coreTeams = nil, nil
	if s.CoreTeamSlug != "" {
		s.coreTeams = append(s.coreTeams, s.CoreTeamSlug)
	}
	for i, m := range s.CoreTeam {
		switch {
		case strings.HasPrefix(m, "@") && strings.Count(m, "/") == 1 && !strings.HasSuffix(m, "/"):
			s.coreTeams = append(s.coreTeams, strings.TrimPrefix(m, "@"))
		case strings.ContainsAny(m, "@/ "):
			return at(fmt.Sprintf(".core_team[%d]", i), "core_team entry %q is neither a login nor @org/team", m)
		default:
			s.coreLogins = append(s.coreLogins, m)
		}
	}
	var err error
	if s.window, err = collectors.ParseDuration(s.Window, DefaultWindow); err != nil {
		return at(".window", "%v", err)
	}
	if s.fullResync, err = collectors.ParseDuration(s.FullResync, DefaultFullResync); err != nil {
		return at(".full_resync", "%v", err)
	}
	if s.BugLabels == nil {
		s.BugLabels = DefaultBugLabels
	}
	if s.EscapeLabels == nil {
		s.EscapeLabels = DefaultEscapeLabels
	}
	if s.FeatureLabels == nil {
		s.FeatureLabels = DefaultFeatureLabels
	}
	if s.DocGlobs == nil {
		s.DocGlobs = DefaultDocGlobs
	}
	for i, g := range s.DocGlobs {
		if !validGlob(g) {
			return at(fmt.Sprintf(".doc_globs[%d]", i), "doc glob %q is malformed", g)
		}
	}
	return nil
}

// validGlob checks a doc glob: path.Match syntax per segment, plus "**".
func validGlob(g string) bool {
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if _, err := path.Match(seg, ""); err != nil {
			return false
		}
	}
	return g != ""
}

// MatchGlob matches a file path against a glob where "**" matches any number
// of directories (also none) and other segments follow path.Match.
func MatchGlob(glob, file string) bool {
	return matchSegs(strings.Split(glob, "/"), strings.Split(file, "/"))
}

func matchSegs(g, f []string) bool {
	for len(g) > 0 {
		if g[0] == "**" {
			for i := 0; i <= len(f); i++ {
				if matchSegs(g[1:], f[i:]) {
					return true
				}
			}
			return false
		}
		if len(f) == 0 {
			return false
		}
		if m, _ := path.Match(g[0], f[0]); !m {
			return false
		}
		g, f = g[1:], f[1:]
	}
	return len(f) == 0
}
