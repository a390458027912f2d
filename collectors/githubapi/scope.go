package githubapi

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"sync"

	gh "github.com/google/go-github/v60/github"
)

// Scope is the set of repositories a GitHub source covers: every
// non-archived repository of the orgs, filtered by include and exclude
// globs on owner/name, plus repositories named one by one.
type Scope struct {
	Orgs    []string `yaml:"orgs"`
	Repos   []string `yaml:"repos"`
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
}

// Validate checks the scope; errors name the field through at.
func (s *Scope) Validate(source string, at func(field, format string, args ...any) error) error {
	if len(s.Orgs) == 0 && len(s.Repos) == 0 {
		return at("", "source %q needs orgs or repos", source)
	}
	for i, r := range s.Repos {
		if parts := strings.Split(r, "/"); len(parts) != 2 || parts[0] == "" || parts[1] == "" {
			return at(fmt.Sprintf(".repos[%d]", i), "repository %q is not owner/name", r)
		}
	}
	for field, globs := range map[string][]string{".include": s.Include, ".exclude": s.Exclude} {
		for i, g := range globs {
			if _, err := path.Match(g, ""); err != nil {
				return at(fmt.Sprintf("%s[%d]", field, i), "glob %q: %v", g, err)
			}
		}
	}
	return nil
}

// InScope reports whether owner/name passes the include and exclude globs
// (case-insensitively).
func (s *Scope) InScope(full string) bool {
	full = strings.ToLower(full)
	if len(s.Include) > 0 {
		ok := false
		for _, g := range s.Include {
			if m, _ := path.Match(strings.ToLower(g), full); m {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range s.Exclude {
		if m, _ := path.Match(strings.ToLower(g), full); m {
			return false
		}
	}
	return true
}

// RepoInfo is what the single-repository resource says of a repository.
type RepoInfo struct {
	FullName      string
	DefaultBranch string
	Stars         int
	Forks         int
	Watchers      int // subscribers, not stargazers
}

// ListScope resolves the scope to repositories, sorted by name, reading each
// one's resource (counters, default branch) through conditional requests. A
// repository that no longer exists is left out and reported to missing.
func (c *Client) ListScope(ctx context.Context, s Scope, missing func(full string)) ([]RepoInfo, error) {
	seen := map[string]bool{}
	var names []string
	for _, org := range s.Orgs {
		opt := &gh.RepositoryListByOrgOptions{Type: "all", ListOptions: gh.ListOptions{PerPage: 100}}
		for {
			repos, resp, err := c.REST.Repositories.ListByOrg(ctx, org, opt)
			if err != nil {
				return nil, fmt.Errorf("listing repositories of %s: %w", org, err)
			}
			for _, r := range repos {
				full := r.GetFullName()
				if r.GetArchived() || !s.InScope(full) || seen[strings.ToLower(full)] {
					continue
				}
				seen[strings.ToLower(full)] = true
				names = append(names, full)
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	for _, full := range s.Repos {
		if !seen[strings.ToLower(full)] {
			seen[strings.ToLower(full)] = true
			names = append(names, full)
		}
	}
	var mu sync.Mutex
	var out []RepoInfo
	err := c.Each(ctx, names, func(full string) error {
		owner, name, _ := strings.Cut(full, "/")
		r, resp, err := c.REST.Repositories.Get(ctx, owner, name)
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			if missing != nil {
				missing(full)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", full, err)
		}
		mu.Lock()
		out = append(out, RepoInfo{FullName: full, DefaultBranch: r.GetDefaultBranch(), Stars: r.GetStargazersCount(),
			Forks: r.GetForksCount(), Watchers: r.GetSubscribersCount()})
		mu.Unlock()
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].FullName < out[j].FullName })
	return out, err
}

// Each runs f for every item, as many at once as max_concurrency allows,
// and joins the errors.
func (c *Client) Each(ctx context.Context, items []string, f func(string) error) error {
	work := make(chan string)
	errs := make(chan error, len(items)+1)
	var wg sync.WaitGroup
	for i := 0; i < cap(c.Transport.sem); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := f(it); err != nil {
					errs <- err
				}
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		errs <- err
	}
	close(errs)
	var all []error
	for e := range errs {
		all = append(all, e)
	}
	return joinErrors(all)
}
