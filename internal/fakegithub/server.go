// Package fakegithub is a fake GitHub for tests: REST and GraphQL over a
// dataset the test builds, answering with the documented shapes — Link
// pagination, ETags and 304s, x-ratelimit-* headers, GraphQL documents
// validated against GitHub's public schema and charged points by GitHub's
// formula — and with faults the test injects.
package fakegithub

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/bakhmach-hub/kpi_exporter/internal/ghschema"
)

// Actor is an account: a User or a Bot.
type Actor struct {
	Login string
	Bot   bool
}

// Review of a pull request.
type Review struct {
	Author    Actor
	State     string // APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING
	Submitted time.Time
}

// Event is a ReadyForReviewEvent or ConvertToDraftEvent.
type Event struct {
	Ready bool
	At    time.Time
}

// PR is a pull request of the dataset.
type PR struct {
	Number  int
	Author  *Actor // nil: a deleted account
	Created time.Time
	Updated time.Time
	Draft   bool
	Merged  *time.Time
	Closed  *time.Time
	Labels  []string
	Reviews []Review
	Events  []Event
	Files   []string
}

// Comment on an issue or discussion.
type Comment struct {
	Author  Actor
	Created time.Time
}

// Issue of the dataset.
type Issue struct {
	Number      int
	Author      Actor
	Created     time.Time
	Updated     time.Time
	Closed      *time.Time // the last close, when closed now
	StateReason string     // COMPLETED, NOT_PLANNED, REOPENED or ""
	Labels      []string
	Comments    []Comment
}

// Discussion of the dataset.
type Discussion struct {
	Number   int
	Author   Actor
	Created  time.Time
	Updated  time.Time
	Comments []Comment
}

// Release of a repository.
type Release struct {
	Tag       string
	Draft     bool
	Created   time.Time
	Published *time.Time
}

// Milestone of a repository.
type Milestone struct {
	Number int
	Title  string
	Due    *time.Time
	Closed *time.Time
}

// Alert is a Dependabot alert.
type Alert struct {
	Number   int
	State    string // open, fixed, dismissed
	Severity string
	Created  time.Time
	Updated  time.Time
	Fixed    *time.Time
}

// Workflow is a GitHub Actions workflow.
type Workflow struct {
	ID   int64
	Name string
	Path string // .github/workflows/ci.yml
}

// WorkflowRun is a run in its latest attempt (a re-run keeps its id and
// raises Attempt, as on GitHub).
type WorkflowRun struct {
	ID         int64
	WorkflowID int64
	Branch     string
	Event      string
	Status     string // queued, in_progress, completed
	Conclusion string // success, failure, cancelled, skipped, timed_out, …
	Attempt    int
	Created    time.Time
	Started    time.Time
	Updated    time.Time
}

// UsageItem is a line of the billing usage report.
type UsageItem struct {
	Date                                         time.Time
	Product, SKU, UnitType, Repository           string
	Quantity, PricePerUnit, Gross, Discount, Net float64
}

// Artifact is a workflow run's artifact; Zip is its content.
type Artifact struct {
	ID      int64
	RunID   int64
	Name    string
	Expired bool
	Zip     []byte
}

// Repo is a repository of the dataset.
type Repo struct {
	Owner, Name           string
	Archived              bool
	Stars, Forks, Watches int
	PRs                   []*PR
	Issues                []*Issue
	Discussions           []*Discussion
	Releases              []*Release
	Milestones            []*Milestone
	Alerts                []*Alert
	Workflows             []*Workflow
	Runs                  []*WorkflowRun
	Artifacts             []*Artifact
}

// FullName is owner/name.
func (r *Repo) FullName() string { return r.Owner + "/" + r.Name }

// Server is the fake.
type Server struct {
	*httptest.Server
	Schema *ast.Schema

	mu    sync.Mutex
	Repos []*Repo
	Teams map[string][]string // "org/slug" → logins
	// Usage holds the enhanced billing platform's usage items by org;
	// UsageStatus, when set, is the status the usage endpoint answers with
	// (410 when the org has no enhanced billing, 403 without permission).
	Usage       map[string][]UsageItem
	UsageStatus int
	// NoAlertsPermission makes the alert endpoints answer 403 as GitHub does
	// for a token without the permission.
	NoAlertsPermission bool
	// Fault, when set, may answer a request instead of the fake (to inject
	// 502s, rate limits, delays); it returns true when it did.
	Fault func(w http.ResponseWriter, r *http.Request) bool

	// What the fake saw.
	Requests      map[string]int // "GET 200", "POST graphql"…
	Queries       []string       // every GraphQL document received
	Points        int
	inFlight      int
	MaxInFlight   int
	RateRemaining int
	Now           func() time.Time
}

// New starts a fake on loopback. schemaPath is GitHub's public schema.
func New(schemaPath string) (*Server, error) {
	s, err := ghschema.Load(schemaPath)
	if err != nil {
		return nil, err
	}
	f := &Server{Schema: s, Teams: map[string][]string{}, Requests: map[string]int{}, RateRemaining: 5000, Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orgs/{org}/repos", f.orgRepos)
	mux.HandleFunc("GET /repos/{owner}/{repo}", f.repo)
	mux.HandleFunc("GET /repos/{owner}/{repo}/releases", f.releases)
	mux.HandleFunc("GET /repos/{owner}/{repo}/milestones", f.milestones)
	mux.HandleFunc("GET /orgs/{org}/dependabot/alerts", f.orgAlerts)
	mux.HandleFunc("GET /repos/{owner}/{repo}/dependabot/alerts", f.repoAlerts)
	mux.HandleFunc("GET /orgs/{org}/teams/{slug}/members", f.teamMembers)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows", f.workflows)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs", f.runs)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/workflows/{file}/runs", f.runs)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/runs/{id}/artifacts", f.runArtifacts)
	mux.HandleFunc("GET /repos/{owner}/{repo}/actions/artifacts/{id}/zip", f.artifactZip)
	mux.HandleFunc("GET /organizations/{org}/settings/billing/usage", f.billingUsage)
	mux.HandleFunc("POST /graphql", f.graphql)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.inFlight++
		f.MaxInFlight = max(f.MaxInFlight, f.inFlight)
		fault := f.Fault
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.inFlight--
			f.mu.Unlock()
		}()
		if fault != nil && fault(w, r) {
			f.count(r, "fault")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/_blob/") {
			// Pre-signed artifact storage: no GitHub credentials, and none
			// may be sent.
			f.blob(w, r)
			return
		}
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			writeJSON(w, r, http.StatusUnauthorized, map[string]any{"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest"})
			return
		}
		mux.ServeHTTP(w, r)
	}))
	return f, nil
}

// Stats returns a copy of the request counters.
func (f *Server) Stats() (map[string]int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]int{}
	for k, v := range f.Requests {
		m[k] = v
	}
	return m, f.Points
}

// ResetStats clears the counters between phases of a test.
func (f *Server) ResetStats() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Requests, f.Queries, f.Points, f.MaxInFlight = map[string]int{}, nil, 0, 0
}

// Update runs fn with the dataset locked, for changes between runs.
func (f *Server) Update(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *Server) count(r *http.Request, code string) {
	api := "rest"
	if r.URL.Path == "/graphql" {
		api = "graphql"
	}
	f.mu.Lock()
	f.Requests[api+" "+code]++
	f.mu.Unlock()
}

func (f *Server) rateHeaders(w http.ResponseWriter, resource string) {
	f.mu.Lock()
	rem := f.RateRemaining
	f.mu.Unlock()
	h := w.Header()
	h.Set("X-Ratelimit-Limit", "5000")
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(rem))
	h.Set("X-Ratelimit-Used", strconv.Itoa(5000-rem))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(f.Now().Add(time.Hour).Unix(), 10))
	h.Set("X-Ratelimit-Resource", resource)
	h.Set("X-Github-Api-Version-Selected", "2022-11-28")
}

// writeJSON answers like GitHub's REST API: an ETag on every 200 and a 304
// (which costs no rate limit) when If-None-Match matches.
func writeJSON(w http.ResponseWriter, r *http.Request, code int, v any) {
	body, _ := json.Marshal(v)
	if code == http.StatusOK {
		etag := fmt.Sprintf(`W/"%x"`, sha1.Sum(body))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(body)
}

// page slices a REST listing by per_page and page, and sets the Link header
// as GitHub does. An empty listing is an empty array, never null.
func page[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 {
		per = 30
	}
	per = min(per, 100)
	p, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if p <= 0 {
		p = 1
	}
	start := min((p-1)*per, len(items))
	end := min(start+per, len(items))
	last := max(1, (len(items)+per-1)/per)
	link := func(n int, rel string) string {
		u := *r.URL
		q := u.Query()
		q.Set("page", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		return fmt.Sprintf(`<http://%s%s>; rel="%s"`, r.Host, u.RequestURI(), rel)
	}
	var links []string
	if p < last {
		links = append(links, link(p+1, "next"), link(last, "last"))
	}
	if p > 1 {
		links = append(links, link(1, "first"), link(p-1, "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	if items == nil {
		return []T{}
	}
	return items[start:end]
}

func (f *Server) find(owner, name string) *Repo {
	for _, r := range f.Repos {
		if strings.EqualFold(r.Owner, owner) && strings.EqualFold(r.Name, name) {
			return r
		}
	}
	return nil
}

func iso(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func isoPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return iso(*t)
}

func userJSON(login string, bot bool) map[string]any {
	typ := "User"
	if bot {
		typ = "Bot"
	}
	return map[string]any{"login": login, "id": len(login)*1000 + 7, "node_id": "U_" + login, "type": typ, "site_admin": false,
		"html_url": "https://github.com/" + login}
}

func repoJSON(r *Repo, full bool) map[string]any {
	m := map[string]any{
		"id": len(r.FullName()) * 31, "node_id": "R_" + r.FullName(), "name": r.Name, "full_name": r.FullName(),
		"private": false, "owner": userJSON(r.Owner, false), "html_url": "https://github.com/" + r.FullName(),
		"fork": false, "archived": r.Archived, "disabled": false, "visibility": "public", "default_branch": "main",
		"stargazers_count": r.Stars, "watchers_count": r.Stars, "forks_count": r.Forks, "open_issues_count": 0,
		"created_at": "2020-01-01T00:00:00Z", "updated_at": "2026-11-01T00:00:00Z", "pushed_at": "2026-11-01T00:00:00Z",
	}
	if full {
		m["subscribers_count"] = r.Watches
		m["network_count"] = r.Forks
	}
	return m
}

func (f *Server) orgRepos(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	f.mu.Lock()
	var items []map[string]any
	for _, rp := range f.Repos {
		if strings.EqualFold(rp.Owner, r.PathValue("org")) {
			items = append(items, repoJSON(rp, false))
		}
	}
	f.mu.Unlock()
	if items == nil {
		f.notFound(w, r)
		return
	}
	f.ok(w, r, page(w, r, items))
}

func (f *Server) ok(w http.ResponseWriter, r *http.Request, v any) {
	rec := &codeRecorder{ResponseWriter: w, code: 200}
	writeJSON(rec, r, http.StatusOK, v)
	f.count(r, strconv.Itoa(rec.code))
}

func (f *Server) notFound(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusNotFound, map[string]any{"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})
	f.count(r, "404")
}

type codeRecorder struct {
	http.ResponseWriter
	code int
}

func (c *codeRecorder) WriteHeader(code int) { c.code = code; c.ResponseWriter.WriteHeader(code) }

func (f *Server) repo(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var v map[string]any
	if rp != nil {
		v = repoJSON(rp, true)
	}
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	f.ok(w, r, v)
}

func (f *Server) releases(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var items []map[string]any
	if rp != nil {
		rels := append([]*Release(nil), rp.Releases...)
		sort.Slice(rels, func(i, j int) bool { return rels[i].Created.After(rels[j].Created) })
		for i, rel := range rels {
			items = append(items, map[string]any{"id": i + 1, "node_id": fmt.Sprintf("RE_%d", i), "tag_name": rel.Tag, "name": rel.Tag,
				"draft": rel.Draft, "prerelease": false, "created_at": iso(rel.Created), "published_at": isoPtr(rel.Published),
				"author": userJSON("releaser", false), "target_commitish": "main"})
		}
	}
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	f.ok(w, r, page(w, r, items))
}

func (f *Server) milestones(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	state := r.URL.Query().Get("state")
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var items []map[string]any
	if rp != nil {
		for _, m := range rp.Milestones {
			st := "open"
			if m.Closed != nil {
				st = "closed"
			}
			if state != "all" && st != state && (state != "" || st != "open") {
				continue
			}
			items = append(items, map[string]any{"id": m.Number, "number": m.Number, "title": m.Title, "state": st,
				"due_on": isoPtr(m.Due), "closed_at": isoPtr(m.Closed), "created_at": "2026-01-01T00:00:00Z",
				"open_issues": 0, "closed_issues": 3, "creator": userJSON("pm", false)})
		}
	}
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	f.ok(w, r, page(w, r, items))
}

func (f *Server) alerts(w http.ResponseWriter, r *http.Request, repos []*Repo) {
	f.rateHeaders(w, "core")
	if f.NoAlertsPermission {
		writeJSON(w, r, http.StatusForbidden, map[string]any{"message": "Resource not accessible by integration",
			"documentation_url": "https://docs.github.com/rest/dependabot/alerts", "status": "403"})
		f.count(r, "403")
		return
	}
	q := r.URL.Query()
	states := map[string]bool{}
	for _, s := range strings.Split(q.Get("state"), ",") {
		if s != "" {
			states[s] = true
		}
	}
	type item struct {
		a    *Alert
		repo *Repo
	}
	var all []item
	f.mu.Lock()
	for _, rp := range repos {
		for _, a := range rp.Alerts {
			if len(states) == 0 || states[a.State] {
				all = append(all, item{a, rp})
			}
		}
	}
	f.mu.Unlock()
	if q.Get("sort") == "updated" {
		sort.Slice(all, func(i, j int) bool { return all[i].a.Updated.After(all[j].a.Updated) })
	} else {
		sort.Slice(all, func(i, j int) bool { return all[i].a.Created.After(all[j].a.Created) })
	}
	if q.Get("direction") == "asc" {
		for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
			all[i], all[j] = all[j], all[i]
		}
	}
	// Cursor pagination, as the alerts endpoints do it: after=<cursor>.
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 {
		per = 30
	}
	start, err := indexOf(q.Get("after"))
	if err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Invalid cursor"})
		return
	}
	start = min(start, len(all))
	end := min(start+per, len(all))
	if end < len(all) {
		u := *r.URL
		qq := u.Query()
		qq.Set("after", cursorOf(end))
		u.RawQuery = qq.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<http://%s%s>; rel="next"`, r.Host, u.RequestURI()))
	}
	out := []map[string]any{}
	for _, it := range all[start:end] {
		a := it.a
		out = append(out, map[string]any{
			"number": a.Number, "state": a.State, "url": "https://api.github.com/repos/" + it.repo.FullName() + "/dependabot/alerts/" + strconv.Itoa(a.Number),
			"html_url":   "https://github.com/" + it.repo.FullName() + "/security/dependabot/" + strconv.Itoa(a.Number),
			"dependency": map[string]any{"package": map[string]any{"ecosystem": "npm", "name": "lodash"}, "manifest_path": "package-lock.json", "scope": "runtime"},
			"security_advisory": map[string]any{"ghsa_id": fmt.Sprintf("GHSA-%04d-xxxx-yyyy", a.Number), "summary": "Prototype pollution",
				"severity": a.Severity, "identifiers": []any{}, "references": []any{}, "published_at": iso(a.Created), "updated_at": iso(a.Updated)},
			"security_vulnerability": map[string]any{"package": map[string]any{"ecosystem": "npm", "name": "lodash"}, "severity": a.Severity,
				"vulnerable_version_range": "< 4.17.21", "first_patched_version": map[string]any{"identifier": "4.17.21"}},
			"created_at": iso(a.Created), "updated_at": iso(a.Updated), "dismissed_at": nil, "dismissed_by": nil,
			"dismissed_reason": nil, "dismissed_comment": nil, "fixed_at": isoPtr(a.Fixed), "auto_dismissed_at": nil,
			"repository": repoJSON(it.repo, false),
		})
	}
	f.ok(w, r, out)
}

func (f *Server) orgAlerts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	var repos []*Repo
	for _, rp := range f.Repos {
		if strings.EqualFold(rp.Owner, r.PathValue("org")) {
			repos = append(repos, rp)
		}
	}
	f.mu.Unlock()
	f.alerts(w, r, repos)
}

func (f *Server) repoAlerts(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	f.alerts(w, r, []*Repo{rp})
}

func (f *Server) teamMembers(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	f.mu.Lock()
	logins, ok := f.Teams[r.PathValue("org")+"/"+r.PathValue("slug")]
	f.mu.Unlock()
	if !ok {
		f.notFound(w, r)
		return
	}
	var users []map[string]any
	for _, l := range logins {
		users = append(users, userJSON(l, false))
	}
	f.ok(w, r, page(w, r, users))
}

func (f *Server) graphql(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "graphql")
	var req struct {
		Query     string         `json:"query"`
		Variables map[string]any `json:"variables"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, r, http.StatusBadRequest, map[string]any{"message": "Problems parsing JSON"})
		f.count(r, "400")
		return
	}
	f.mu.Lock()
	f.Queries = append(f.Queries, req.Query)
	f.mu.Unlock()
	gqlErr := func(msg string) {
		// GitHub answers invalid documents with 200 and an errors list.
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{"message": msg}}})
		f.count(r, "200")
	}
	doc, err := ghschema.Validate(f.Schema, req.Query)
	if err != nil {
		gqlErr(err.Error())
		return
	}
	if len(doc.Operations) != 1 {
		gqlErr("one operation expected")
		return
	}
	op := doc.Operations[0]
	cost, err := ghschema.Cost(op, req.Variables)
	if err != nil {
		gqlErr(err.Error())
		return
	}
	f.mu.Lock()
	f.Points += cost
	remaining := f.RateRemaining
	root := f.root(cost, remaining)
	data, err := execute(op, req.Variables, root)
	f.mu.Unlock()
	if err != nil {
		gqlErr(err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{"data": data})
	f.count(r, "200")
}

func (f *Server) workflows(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var items []map[string]any
	if rp != nil {
		for _, wf := range rp.Workflows {
			items = append(items, map[string]any{"id": wf.ID, "node_id": fmt.Sprintf("W_%d", wf.ID), "name": wf.Name, "path": wf.Path,
				"state": "active", "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
				"url":       fmt.Sprintf("https://api.github.com/repos/%s/actions/workflows/%d", rp.FullName(), wf.ID),
				"html_url":  "https://github.com/" + rp.FullName() + "/blob/main/" + wf.Path,
				"badge_url": "https://github.com/" + rp.FullName() + "/workflows/" + wf.Name + "/badge.svg"})
		}
	}
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	pageItems := page(w, r, items)
	if pageItems == nil {
		pageItems = []map[string]any{}
	}
	f.ok(w, r, map[string]any{"total_count": len(items), "workflows": pageItems})
}

// createdRange reads the created filter: A..B, >=A, <=B, or a date.
func createdRange(v string) (from, to time.Time, err error) {
	parse := func(s string) (time.Time, error) {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			return t, nil
		}
		return time.Parse("2006-01-02", s)
	}
	switch {
	case v == "":
		return
	case strings.Contains(v, ".."):
		a, b, _ := strings.Cut(v, "..")
		if from, err = parse(a); err == nil {
			to, err = parse(b)
		}
	case strings.HasPrefix(v, ">="):
		from, err = parse(v[2:])
	case strings.HasPrefix(v, "<="):
		to, err = parse(v[2:])
	default:
		from, err = parse(v)
		to = from.Add(24*time.Hour - time.Nanosecond)
	}
	return
}

func (f *Server) runs(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	q := r.URL.Query()
	from, to, err := createdRange(q.Get("created"))
	if err != nil {
		writeJSON(w, r, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed: created"})
		f.count(r, "422")
		return
	}
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var match []*WorkflowRun
	if rp != nil {
		file := r.PathValue("file")
		for _, run := range rp.Runs {
			if file != "" {
				// A workflow is named by its file name or its id.
				var path string
				for _, wf := range rp.Workflows {
					if wf.ID == run.WorkflowID {
						path = wf.Path
					}
				}
				if !strings.HasSuffix(path, "/"+file) && file != strconv.FormatInt(run.WorkflowID, 10) {
					continue
				}
			}
			if (q.Get("branch") == "" || run.Branch == q.Get("branch")) && (q.Get("status") == "" || run.Status == q.Get("status") || run.Conclusion == q.Get("status")) &&
				(from.IsZero() || !run.Created.Before(from)) && (to.IsZero() || !run.Created.After(to)) {
				match = append(match, run)
			}
		}
	}
	var items []map[string]any
	if rp != nil {
		sort.Slice(match, func(i, j int) bool { return match[i].Created.After(match[j].Created) })
		total := len(match)
		if len(match) > 1000 {
			match = match[:1000] // GitHub returns at most 1,000 runs for one query
		}
		for _, run := range match {
			var conclusion any
			if run.Conclusion != "" {
				conclusion = run.Conclusion
			}
			name := ""
			for _, wf := range rp.Workflows {
				if wf.ID == run.WorkflowID {
					name = wf.Name
				}
			}
			items = append(items, map[string]any{
				"id": run.ID, "name": name, "node_id": fmt.Sprintf("WFR_%d", run.ID), "head_branch": run.Branch,
				"head_sha": fmt.Sprintf("%040x", run.ID), "path": "", "display_title": "Run", "run_number": run.ID % 10000,
				"event": run.Event, "status": run.Status, "conclusion": conclusion, "workflow_id": run.WorkflowID,
				"run_attempt": run.Attempt, "created_at": iso(run.Created), "updated_at": iso(run.Updated), "run_started_at": iso(run.Started),
				"url":        fmt.Sprintf("https://api.github.com/repos/%s/actions/runs/%d", rp.FullName(), run.ID),
				"html_url":   fmt.Sprintf("https://github.com/%s/actions/runs/%d", rp.FullName(), run.ID),
				"repository": repoJSON(rp, false), "head_repository": repoJSON(rp, false),
			})
		}
		f.mu.Unlock()
		pageItems := page(w, r, items)
		if pageItems == nil {
			pageItems = []map[string]any{}
		}
		f.ok(w, r, map[string]any{"total_count": total, "workflow_runs": pageItems})
		return
	}
	f.mu.Unlock()
	f.notFound(w, r)
}

func (f *Server) runArtifacts(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	f.mu.Lock()
	rp := f.find(r.PathValue("owner"), r.PathValue("repo"))
	var items []map[string]any
	if rp != nil {
		for _, a := range rp.Artifacts {
			if a.RunID != id {
				continue
			}
			items = append(items, map[string]any{"id": a.ID, "node_id": fmt.Sprintf("MDg_%d", a.ID), "name": a.Name,
				"size_in_bytes": len(a.Zip), "expired": a.Expired,
				"url":                  fmt.Sprintf("https://api.github.com/repos/%s/actions/artifacts/%d", rp.FullName(), a.ID),
				"archive_download_url": fmt.Sprintf("https://api.github.com/repos/%s/actions/artifacts/%d/zip", rp.FullName(), a.ID),
				"created_at":           "2026-11-29T10:00:00Z", "expires_at": "2027-02-27T10:00:00Z", "updated_at": "2026-11-29T10:00:00Z",
				"workflow_run": map[string]any{"id": a.RunID, "head_branch": "main"}})
		}
	}
	f.mu.Unlock()
	if rp == nil {
		f.notFound(w, r)
		return
	}
	f.ok(w, r, map[string]any{"total_count": len(items), "artifacts": page(w, r, items)})
}

// artifactZip answers as GitHub does: a redirect to pre-signed storage.
func (f *Server) artifactZip(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	w.Header().Set("Location", fmt.Sprintf("http://%s/_blob/%s?sig=presigned", r.Host, r.PathValue("id")))
	w.WriteHeader(http.StatusFound)
	f.count(r, "302")
}

func (f *Server) blob(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		w.WriteHeader(http.StatusBadRequest) // storage refuses GitHub credentials
		return
	}
	id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/_blob/"), 10, 64)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, rp := range f.Repos {
		for _, a := range rp.Artifacts {
			if a.ID == id {
				w.Header().Set("Content-Type", "application/zip")
				w.Write(a.Zip)
				return
			}
		}
	}
	w.WriteHeader(http.StatusNotFound)
}

func (f *Server) billingUsage(w http.ResponseWriter, r *http.Request) {
	f.rateHeaders(w, "core")
	org := r.PathValue("org")
	f.mu.Lock()
	status, items := f.UsageStatus, f.Usage[org]
	f.mu.Unlock()
	switch status {
	case http.StatusGone:
		writeJSON(w, r, http.StatusGone, map[string]any{"message": "This endpoint is not available for this organization.", "documentation_url": "https://docs.github.com/rest/billing/enhanced-billing", "status": "410"})
		f.count(r, "410")
		return
	case http.StatusForbidden:
		writeJSON(w, r, http.StatusForbidden, map[string]any{"message": "Resource not accessible by personal access token", "documentation_url": "https://docs.github.com/rest/billing/enhanced-billing", "status": "403"})
		f.count(r, "403")
		return
	}
	q := r.URL.Query()
	year, _ := strconv.Atoi(q.Get("year"))
	month, _ := strconv.Atoi(q.Get("month"))
	day, _ := strconv.Atoi(q.Get("day"))
	if year == 0 {
		year = f.Now().UTC().Year()
	}
	out := []map[string]any{}
	for _, it := range items {
		d := it.Date.UTC()
		if d.Year() != year || (month != 0 && int(d.Month()) != month) || (day != 0 && d.Day() != day) {
			continue
		}
		out = append(out, map[string]any{"date": d.Format(time.RFC3339), "product": it.Product, "sku": it.SKU,
			"quantity": it.Quantity, "unitType": it.UnitType, "pricePerUnit": it.PricePerUnit, "grossAmount": it.Gross,
			"discountAmount": it.Discount, "netAmount": it.Net, "organizationName": org, "repositoryName": it.Repository})
	}
	f.ok(w, r, map[string]any{"usageItems": out})
}
