package github

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"github.com/shurcooL/githubv4"
	"go.uber.org/zap"
)

// searchCap is how many results GitHub's search returns at most.
const searchCap = 1000

// searchOverlap re-reads a little of what the last run saw, since GitHub's
// search index lags behind writes.
const searchOverlap = 10 * time.Minute

// maxQueryLen is GitHub's limit on a search query's length.
const maxQueryLen = 256

// syncer runs one collection: scope, histories, REST resources.
type syncer struct {
	c   *Collector
	ctx context.Context
	now time.Time

	mu           sync.Mutex // guards d while workers write into it
	itemsFetched int
}

func (y *syncer) graphql(q any, vars map[string]any) error {
	if err := y.c.client.GraphQL.Query(y.ctx, q, vars); err != nil {
		return fmt.Errorf("GraphQL: %w", err)
	}
	// Every query struct has a RateLimit field; book its cost.
	switch v := q.(type) {
	case *prPageQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *issuePageQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *discussionPageQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *searchIssuesQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *searchDiscussionsQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *moreReviewsQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *moreFilesQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *moreLabelsQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	case *moreCommentsQuery:
		y.c.client.Transport.AddPoints(v.RateLimit.Cost)
	}
	return nil
}

// scope lists the repositories in scope and reads their counters, through
// conditional REST requests.
func (y *syncer) scope() ([]string, error) {
	infos, err := y.c.client.ListScope(y.ctx, y.c.s.Scope, func(full string) {
		y.c.log.Warn("repository not found; left out of scope", zap.String("repo", full))
	})
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(infos))
	for _, info := range infos {
		rd := y.c.data.Repos[info.FullName]
		if rd == nil {
			rd = newRepo()
			y.c.data.Repos[info.FullName] = rd
		}
		rd.Stars, rd.Forks, rd.Watchers = info.Stars, info.Forks, info.Watchers
		names = append(names, info.FullName)
	}
	return names, nil
}

// each runs f for every repository, as many at once as the client allows.
func (y *syncer) each(names []string, f func(string) error) error {
	return y.c.client.Each(y.ctx, names, f)
}

var kinds = []string{"pr", "issue", "discussion"}

// histories completes the first (or a full re-) sync of every repository's
// pull requests, issues and discussions, page by page, keeping the cursors
// so that an interrupted sync resumes where it stopped.
func (y *syncer) histories(repos []string) error {
	d := y.c.data
	if d.SyncStarted.IsZero() {
		d.SyncStarted = y.now
	}
	var todo []string
	for _, full := range repos {
		r := d.Repos[full]
		for _, k := range kinds {
			if !r.Done[k] {
				todo = append(todo, full)
				break
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	y.c.log.Info("syncing repository histories", zap.Int("repositories", len(todo)), zap.Int("in_scope", len(repos)))
	var done int
	lastLog := time.Now()
	err := y.each(todo, func(full string) error {
		for _, k := range kinds {
			if err := y.history(full, k); err != nil {
				return err
			}
		}
		y.mu.Lock()
		done++
		n, items := done, y.itemsFetched
		if time.Since(lastLog) > 10*time.Second || n == len(todo) {
			lastLog = time.Now()
			y.c.log.Info("history sync progress", zap.Int("repositories_done", n), zap.Int("repositories", len(todo)),
				zap.Int("items", items), zap.Uint64("graphql_points", y.c.client.Transport.Stats().Points))
		}
		y.mu.Unlock()
		y.c.report(Progress{Done: n, Total: len(todo), Items: items})
		// Other workers write into the data while this one saves it.
		y.mu.Lock()
		y.c.saveSoon()
		y.mu.Unlock()
		return nil
	})
	return err
}

func (y *syncer) history(full, kind string) error {
	owner, name, _ := strings.Cut(full, "/")
	y.mu.Lock()
	r := y.c.data.Repos[full]
	done, cursor := r.Done[kind], r.Cursors[kind]
	y.mu.Unlock()
	for !done {
		vars := map[string]any{"owner": githubv4.String(owner), "name": githubv4.String(name), "cursor": (*githubv4.String)(nil)}
		if cursor != "" {
			c := githubv4.String(cursor)
			vars["cursor"] = &c
		}
		var next pageInfo
		var n int
		switch kind {
		case "pr":
			var q prPageQuery
			if err := y.graphql(&q, vars); err != nil {
				return fmt.Errorf("%s pull requests: %w", full, err)
			}
			if q.Repository == nil {
				return nil
			}
			for i := range q.Repository.PullRequests.Nodes {
				if err := y.upsertPR(full, &q.Repository.PullRequests.Nodes[i]); err != nil {
					return err
				}
			}
			next, n = q.Repository.PullRequests.PageInfo, len(q.Repository.PullRequests.Nodes)
		case "issue":
			var q issuePageQuery
			if err := y.graphql(&q, vars); err != nil {
				return fmt.Errorf("%s issues: %w", full, err)
			}
			if q.Repository == nil {
				return nil
			}
			for i := range q.Repository.Issues.Nodes {
				if err := y.upsertIssue(full, &q.Repository.Issues.Nodes[i]); err != nil {
					return err
				}
			}
			next, n = q.Repository.Issues.PageInfo, len(q.Repository.Issues.Nodes)
		case "discussion":
			var q discussionPageQuery
			if err := y.graphql(&q, vars); err != nil {
				return fmt.Errorf("%s discussions: %w", full, err)
			}
			if q.Repository == nil {
				return nil
			}
			for i := range q.Repository.Discussions.Nodes {
				if err := y.upsertDiscussion(full, &q.Repository.Discussions.Nodes[i]); err != nil {
					return err
				}
			}
			next, n = q.Repository.Discussions.PageInfo, len(q.Repository.Discussions.Nodes)
		}
		y.mu.Lock()
		y.itemsFetched += n
		if next.HasNextPage {
			cursor = string(next.EndCursor)
			r.Cursors[kind] = cursor
		} else {
			done = true
			r.Done[kind] = true
		}
		y.mu.Unlock()
	}
	return nil
}

// upsertPR stores a pull request, first paging what its first page of
// reviews, files or labels left out when a measurement may need it.
func (y *syncer) upsertPR(full string, f *prFields) error {
	pr := f.toPR()
	if f.Labels.PageInfo.HasNextPage {
		more, err := y.moreLabels(f.ID, string(f.Labels.PageInfo.EndCursor), false)
		if err != nil {
			return err
		}
		pr.Labels = append(pr.Labels, more...)
	}
	m := y.c.measurer(y.now)
	if _, ok := m.firstReview(pr); !ok && f.Reviews.PageInfo.HasNextPage {
		cursor := string(f.Reviews.PageInfo.EndCursor)
		for cursor != "" {
			var q moreReviewsQuery
			if err := y.graphql(&q, map[string]any{"id": githubv4.ID(f.ID), "cursor": githubv4.String(cursor)}); err != nil {
				return fmt.Errorf("%s#%d reviews: %w", full, f.Number, err)
			}
			pr.Reviews = append(pr.Reviews, reviewsOf(q.Node.PullRequest.Reviews)...)
			cursor = ""
			if _, ok := m.firstReview(pr); !ok && q.Node.PullRequest.Reviews.PageInfo.HasNextPage {
				cursor = string(q.Node.PullRequest.Reviews.PageInfo.EndCursor)
			}
		}
	}
	if pr.Merged != nil && f.Files.PageInfo.HasNextPage && !m.docs(pr.Files) && pr.Merged.After(y.now.Add(-y.c.s.window)) {
		cursor := string(f.Files.PageInfo.EndCursor)
		for cursor != "" {
			var q moreFilesQuery
			if err := y.graphql(&q, map[string]any{"id": githubv4.ID(f.ID), "cursor": githubv4.String(cursor)}); err != nil {
				return fmt.Errorf("%s#%d files: %w", full, f.Number, err)
			}
			for _, n := range q.Node.PullRequest.Files.Nodes {
				pr.Files = append(pr.Files, n.Path)
			}
			cursor = ""
			if page := q.Node.PullRequest.Files.PageInfo; page.HasNextPage && !m.docs(pr.Files) {
				cursor = string(page.EndCursor)
			}
		}
		if len(pr.Files) >= 3000 && !m.docs(pr.Files) {
			y.truncated("pr_files") // GitHub lists at most 3,000 files of a pull request
		}
	}
	y.mu.Lock()
	defer y.mu.Unlock()
	if r := y.c.data.Repos[full]; r != nil {
		r.PRs[f.Number] = pr
	}
	return nil
}

func (y *syncer) moreLabels(id, cursor string, issue bool) ([]string, error) {
	var out []string
	for cursor != "" {
		var q moreLabelsQuery
		if err := y.graphql(&q, map[string]any{"id": githubv4.ID(id), "cursor": githubv4.String(cursor)}); err != nil {
			return nil, fmt.Errorf("labels: %w", err)
		}
		conn := q.Node.PullRequest.Labels
		if issue {
			conn = q.Node.Issue.Labels
		}
		for _, l := range conn.Nodes {
			out = append(out, l.Name)
		}
		cursor = ""
		if conn.PageInfo.HasNextPage {
			cursor = string(conn.PageInfo.EndCursor)
		}
	}
	return out, nil
}

func (y *syncer) moreComments(id string, author Actor, cs []Comment, page pageInfo, discussion bool) ([]Comment, error) {
	m := y.c.measurer(y.now)
	for {
		if _, ok := m.firstResponse(author, cs); ok || !page.HasNextPage {
			return cs, nil
		}
		var q moreCommentsQuery
		if err := y.graphql(&q, map[string]any{"id": githubv4.ID(id), "cursor": page.EndCursor}); err != nil {
			return nil, fmt.Errorf("comments: %w", err)
		}
		conn := q.Node.Issue.Comments
		if discussion {
			conn = q.Node.Discussion.Comments
		}
		cs = append(cs, commentsOf(conn)...)
		page = conn.PageInfo
	}
}

func (y *syncer) upsertIssue(full string, f *issueFields) error {
	is := f.toIssue()
	if f.Labels.PageInfo.HasNextPage {
		more, err := y.moreLabels(f.ID, string(f.Labels.PageInfo.EndCursor), true)
		if err != nil {
			return err
		}
		is.Labels = append(is.Labels, more...)
	}
	cs, err := y.moreComments(f.ID, is.Author, is.Comments, f.Comments.PageInfo, false)
	if err != nil {
		return fmt.Errorf("%s#%d: %w", full, f.Number, err)
	}
	is.Comments = trimComments(y.c.measurer(y.now), is.Author, cs)
	y.mu.Lock()
	defer y.mu.Unlock()
	if r := y.c.data.Repos[full]; r != nil {
		r.Issues[f.Number] = is
	}
	return nil
}

func (y *syncer) upsertDiscussion(full string, f *discussionFields) error {
	di := f.toDiscussion()
	cs, err := y.moreComments(f.ID, di.Author, di.Comments, f.Comments.PageInfo, true)
	if err != nil {
		return fmt.Errorf("%s discussion #%d: %w", full, f.Number, err)
	}
	di.Comments = trimComments(y.c.measurer(y.now), di.Author, cs)
	y.mu.Lock()
	defer y.mu.Unlock()
	if r := y.c.data.Repos[full]; r != nil {
		r.Discussions[f.Number] = di
	}
	return nil
}

// trimComments keeps the comments up to and including the first response,
// and every comment by bots or the author before it (a changed bots setting
// may turn one of those into the first response).
func trimComments(m *measurer, author Actor, cs []Comment) []Comment {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Created.Before(cs[j].Created) })
	for i, c := range cs {
		if !m.isBot(c.Author) && !strings.EqualFold(c.Author.Login, author.Login) {
			return cs[:i+1]
		}
	}
	return cs
}

func (y *syncer) truncated(what string) {
	y.mu.Lock()
	y.c.data.Truncated[what]++
	y.mu.Unlock()
}

// searchQueries builds the search qualifiers that cover the scope: one per
// org, and repo: qualifiers packed into queries within GitHub's length limit.
func (y *syncer) searchQueries(suffix string) []string {
	var qs []string
	for _, org := range y.c.s.Orgs {
		qs = append(qs, "org:"+org+" "+suffix)
	}
	cur := ""
	for _, full := range y.c.s.Repos {
		q := "repo:" + full
		if cur != "" && len(cur)+1+len(q)+1+len(suffix) > maxQueryLen {
			qs = append(qs, cur+" "+suffix)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += q
	}
	if cur != "" {
		qs = append(qs, cur+" "+suffix)
	}
	return qs
}

func searchRange(from, to time.Time) string {
	return "updated:" + from.UTC().Format(time.RFC3339) + ".." + to.UTC().Format(time.RFC3339)
}

// updates reads what changed since the histories were last complete,
// through search: a few points for the whole scope.
func (y *syncer) updates(since time.Time) error {
	from := since.Add(-searchOverlap)
	for _, discussions := range []bool{false, true} {
		for _, base := range y.searchQueries("") {
			if err := y.searchRange(strings.TrimSpace(base), from, y.now, discussions, 0); err != nil {
				return err
			}
		}
	}
	return nil
}

// searchRange pages one search; when more match than search returns, it
// splits the time range in two and searches each half.
func (y *syncer) searchRange(base string, from, to time.Time, discussions bool, depth int) error {
	q := base + " " + searchRange(from, to)
	var cursor *githubv4.String
	for {
		vars := map[string]any{"q": githubv4.String(q), "cursor": cursor}
		var count int
		var page pageInfo
		if discussions {
			var r searchDiscussionsQuery
			if err := y.graphql(&r, vars); err != nil {
				return fmt.Errorf("searching %q: %w", q, err)
			}
			count, page = r.Search.DiscussionCount, r.Search.PageInfo
			if count > searchCap && cursor == nil && to.Sub(from) > time.Minute && depth < 30 {
				return y.split(base, from, to, discussions, depth)
			}
			for i := range r.Search.Nodes {
				n := &r.Search.Nodes[i]
				if n.Typename == "Discussion" {
					if err := y.upsertDiscussion(n.Discussion.Repository.NameWithOwner, &n.Discussion.discussionFields); err != nil {
						return err
					}
				}
			}
		} else {
			var r searchIssuesQuery
			if err := y.graphql(&r, vars); err != nil {
				return fmt.Errorf("searching %q: %w", q, err)
			}
			count, page = r.Search.IssueCount, r.Search.PageInfo
			if count > searchCap && cursor == nil && to.Sub(from) > time.Minute && depth < 30 {
				return y.split(base, from, to, discussions, depth)
			}
			for i := range r.Search.Nodes {
				n := &r.Search.Nodes[i]
				switch n.Typename {
				case "PullRequest":
					if err := y.upsertPR(n.PullRequest.Repository.NameWithOwner, &n.PullRequest.prFields); err != nil {
						return err
					}
				case "Issue":
					if err := y.upsertIssue(n.Issue.Repository.NameWithOwner, &n.Issue.issueFields); err != nil {
						return err
					}
				}
			}
		}
		if !page.HasNextPage {
			if count > searchCap {
				y.truncated("search") // more changed within a minute than search returns
			}
			return nil
		}
		c := page.EndCursor
		cursor = &c
	}
}

func (y *syncer) split(base string, from, to time.Time, discussions bool, depth int) error {
	mid := from.Add(to.Sub(from) / 2).Truncate(time.Second)
	if err := y.searchRange(base, from, mid, discussions, depth+1); err != nil {
		return err
	}
	return y.searchRange(base, mid.Add(time.Second), to, discussions, depth+1)
}

// restResources reads releases, closed milestones, Dependabot alerts and the
// core team through conditional requests.
func (y *syncer) restResources(repos []string) error {
	rest := y.c.client.REST
	err := y.each(repos, func(full string) error {
		owner, name, _ := strings.Cut(full, "/")
		// Every page is read: the listing is ordered by creation, and a
		// release created long ago (a draft) may be published inside the
		// window. Pages are conditional, so unchanged ones are 304s.
		var rels []Release
		opt := &gh.ListOptions{PerPage: 100}
		for {
			page, resp, err := rest.Repositories.ListReleases(y.ctx, owner, name, opt)
			if err != nil {
				return fmt.Errorf("%s releases: %w", full, err)
			}
			for _, r := range page {
				rel := Release{Draft: r.GetDraft()}
				if r.PublishedAt != nil {
					t := r.PublishedAt.UTC()
					rel.Published = &t
				}
				rels = append(rels, rel)
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
		var mss []Milestone
		mopt := &gh.MilestoneListOptions{State: "closed", ListOptions: gh.ListOptions{PerPage: 100}}
		for {
			page, resp, err := rest.Issues.ListMilestones(y.ctx, owner, name, mopt)
			if err != nil {
				return fmt.Errorf("%s milestones: %w", full, err)
			}
			for _, m := range page {
				var ms Milestone
				if m.DueOn != nil {
					t := m.DueOn.UTC()
					ms.Due = &t
				}
				if m.ClosedAt != nil {
					t := m.ClosedAt.UTC()
					ms.Closed = &t
				}
				mss = append(mss, ms)
			}
			if resp.NextPage == 0 {
				break
			}
			mopt.Page = resp.NextPage
		}
		y.mu.Lock()
		if r := y.c.data.Repos[full]; r != nil {
			r.Releases, r.Milestones = rels, mss
		}
		y.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	if err := y.alerts(repos); err != nil {
		return err
	}
	return y.team()
}

// alerts reads open Dependabot alerts and those fixed in the window. A
// missing permission makes only these measurements unknown.
func (y *syncer) alerts(repos []string) error {
	var all []Alert
	list := func(repo string, fetch func(opt *gh.ListAlertsOptions) ([]*gh.DependabotAlert, *gh.Response, error)) (bool, error) {
		for _, state := range []string{"open", "fixed"} {
			opt := &gh.ListAlertsOptions{State: gh.String(state), Sort: gh.String("updated"), Direction: gh.String("desc"),
				ListCursorOptions: gh.ListCursorOptions{PerPage: 100}}
			for {
				page, resp, err := fetch(opt)
				if resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound) {
					return false, nil
				}
				if err != nil {
					return false, err
				}
				stop := false
				for _, a := range page {
					al := Alert{Repo: repo, State: a.GetState(), Severity: a.GetSecurityAdvisory().GetSeverity()}
					if al.Repo == "" {
						al.Repo = a.GetRepository().GetFullName()
					}
					if a.CreatedAt != nil {
						al.Created = a.CreatedAt.UTC()
					}
					if a.FixedAt != nil {
						t := a.FixedAt.UTC()
						al.Fixed = &t
					}
					if state == "fixed" && a.UpdatedAt != nil && a.UpdatedAt.Before(y.now.Add(-y.c.s.window)) {
						stop = true // fixed before the window, and the rest too
						continue
					}
					all = append(all, al)
				}
				if stop || resp.After == "" {
					break
				}
				opt.After = resp.After
			}
		}
		return true, nil
	}
	known := true
	rest := y.c.client.REST
	for _, org := range y.c.s.Orgs {
		ok, err := list("", func(opt *gh.ListAlertsOptions) ([]*gh.DependabotAlert, *gh.Response, error) {
			return rest.Dependabot.ListOrgAlerts(y.ctx, org, opt)
		})
		if err != nil {
			return fmt.Errorf("listing Dependabot alerts of %s: %w", org, err)
		}
		known = known && ok
	}
	for _, full := range y.c.s.Repos {
		owner, name, _ := strings.Cut(full, "/")
		ok, err := list(full, func(opt *gh.ListAlertsOptions) ([]*gh.DependabotAlert, *gh.Response, error) {
			return rest.Dependabot.ListRepoAlerts(y.ctx, owner, name, opt)
		})
		if err != nil {
			return fmt.Errorf("listing Dependabot alerts of %s: %w", full, err)
		}
		known = known && ok
	}
	if !known {
		y.c.warnOnce("dependabot", "no permission to read Dependabot alerts; dependabot_alerts_open and vulnerability_resolution_seconds stay unknown")
	}
	y.mu.Lock()
	y.c.data.Alerts, y.c.data.AlertsKnown = all, known
	y.mu.Unlock()
	return nil
}

func (y *syncer) team() error {
	var members []string
	for _, slug := range y.c.s.coreTeams {
		org, team, _ := strings.Cut(slug, "/")
		opt := &gh.TeamListTeamMembersOptions{ListOptions: gh.ListOptions{PerPage: 100}}
		for {
			users, resp, err := y.c.client.REST.Teams.ListTeamMembersBySlug(y.ctx, org, team, opt)
			if resp != nil && (resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound) {
				y.c.warnOnce("team "+slug, "cannot read the members of the core team "+slug+"; its members do not count as core")
				break
			}
			if err != nil {
				return fmt.Errorf("members of %s: %w", slug, err)
			}
			for _, u := range users {
				members = append(members, u.GetLogin())
			}
			if resp.NextPage == 0 {
				break
			}
			opt.Page = resp.NextPage
		}
	}
	y.mu.Lock()
	y.c.data.TeamMembers = members
	y.mu.Unlock()
	return nil
}
