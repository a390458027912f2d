package github

import (
	"sort"
	"strings"
	"time"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Severities of Dependabot alerts, always reported (a count of 0 is a
// value).
var Severities = []string{"critical", "high", "medium", "low"}

var qualifyingReview = map[string]bool{"APPROVED": true, "CHANGES_REQUESTED": true, "COMMENTED": true, "DISMISSED": true}

// measurer computes the measurements from what is known, pooled over the
// repositories in scope. It is pure: the same data, settings and time give
// the same measurements.
type measurer struct {
	s     *Settings
	bots  map[string]bool
	core  map[string]bool
	now   time.Time
	from  time.Time // W is (from, now]
	repos []string  // in scope, sorted
}

func newMeasurer(s *Settings, d *Data, repos []string, now time.Time) *measurer {
	m := &measurer{s: s, bots: set(s.Bots), core: set(s.coreLogins), now: now, from: now.Add(-s.window), repos: repos}
	for _, l := range d.TeamMembers {
		m.core[strings.ToLower(l)] = true
	}
	return m
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[strings.ToLower(x)] = true
	}
	return m
}

func (m *measurer) isBot(a Actor) bool {
	return a.Bot || strings.HasSuffix(a.Login, "[bot]") || m.bots[strings.ToLower(a.Login)]
}

func (m *measurer) inW(t time.Time) bool { return t.After(m.from) && !t.After(m.now) }

func hasLabel(labels, want []string) bool {
	for _, l := range labels {
		for _, w := range want {
			if strings.EqualFold(l, w) {
				return true
			}
		}
	}
	return false
}

// firstReview is the submission time of the PR's first qualifying review.
func (m *measurer) firstReview(pr *PR) (time.Time, bool) {
	if pr.Start == nil {
		return time.Time{}, false
	}
	var first time.Time
	found := false
	for _, r := range pr.Reviews {
		if !qualifyingReview[r.State] || m.isBot(r.Author) || strings.EqualFold(r.Author.Login, pr.Author.Login) || r.Submitted.Before(*pr.Start) {
			continue
		}
		if !found || r.Submitted.Before(first) {
			first, found = r.Submitted, true
		}
	}
	return first, found
}

// firstResponse is the first comment by a non-bot other than the author.
func (m *measurer) firstResponse(author Actor, cs []Comment) (time.Time, bool) {
	var first time.Time
	found := false
	for _, c := range cs {
		if m.isBot(c.Author) || strings.EqualFold(c.Author.Login, author.Login) {
			continue
		}
		if !found || c.Created.Before(first) {
			first, found = c.Created, true
		}
	}
	return first, found
}

func (m *measurer) docs(files []string) bool {
	for _, f := range files {
		for _, g := range m.s.DocGlobs {
			if MatchGlob(g, f) {
				return true
			}
		}
	}
	return false
}

// measure returns every measurement; statistics over empty populations are
// left out.
func (m *measurer) measure(d *Data) []kpi.Measurement {
	var out []kpi.Measurement
	add := func(name string, v float64, labels ...string) {
		ls := make(kpi.Labels, 0, len(labels)/2)
		for i := 0; i+1 < len(labels); i += 2 {
			ls = append(ls, kpi.Label{Name: labels[i], Value: labels[i+1]})
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
		out = append(out, kpi.Measurement{Name: name, Value: v, Labels: ls})
	}
	stats := func(name string, xs []float64, which []string, labels ...string) {
		if len(xs) == 0 {
			return
		}
		for _, st := range which {
			v := collectors.Mean(xs)
			if st == "median" {
				v = collectors.Median(xs)
			}
			add(name, v, append([]string{"stat", st}, labels...)...)
		}
	}

	var reviewWait, mergeTime []float64
	var opened, merged, external, docs, features int
	active, everMerged := map[string]bool{}, map[string]time.Time{}
	var issueRes, issueResp []float64
	var issuesCreated, issuesClosed, bugs, escaped int
	var discussions int
	var discussionResp []float64
	var releases int
	var msDue, msOnTime int
	var stars, forks, watchers int

	for _, name := range m.repos {
		r := d.Repos[name]
		if r == nil {
			continue
		}
		stars, forks, watchers = stars+r.Stars, forks+r.Forks, watchers+r.Watchers
		add("stars", float64(r.Stars), "repo", name)
		add("forks", float64(r.Forks), "repo", name)
		add("watchers", float64(r.Watchers), "repo", name)

		for _, pr := range r.PRs {
			if m.isBot(pr.Author) {
				continue
			}
			login := strings.ToLower(pr.Author.Login)
			if first, ok := m.firstReview(pr); ok && m.inW(first) {
				reviewWait = append(reviewWait, first.Sub(*pr.Start).Seconds())
			}
			if m.inW(pr.Created) {
				opened++
			}
			if pr.Merged == nil {
				continue
			}
			if t, ok := everMerged[login]; !ok || pr.Merged.Before(t) {
				everMerged[login] = *pr.Merged
			}
			if !m.inW(*pr.Merged) {
				continue
			}
			merged++
			mergeTime = append(mergeTime, pr.Merged.Sub(pr.Created).Seconds())
			active[login] = true
			if !m.core[login] {
				external++
			}
			if m.docs(pr.Files) {
				docs++
			}
			if hasLabel(pr.Labels, m.s.FeatureLabels) {
				features++
			}
		}

		for _, is := range r.Issues {
			bot := m.isBot(is.Author)
			if m.inW(is.Created) && hasLabel(is.Labels, m.s.BugLabels) {
				bugs++
				if hasLabel(is.Labels, m.s.EscapeLabels) {
					escaped++
				}
			}
			if bot {
				continue
			}
			if is.Closed != nil && is.StateReason == "COMPLETED" && m.inW(*is.Closed) {
				issueRes = append(issueRes, is.Closed.Sub(is.Created).Seconds())
			}
			if m.inW(is.Created) {
				issuesCreated++
				if is.Closed != nil {
					issuesClosed++
				}
				if t, ok := m.firstResponse(is.Author, is.Comments); ok {
					issueResp = append(issueResp, t.Sub(is.Created).Seconds())
				}
			}
		}

		for _, di := range r.Discussions {
			if !m.inW(di.Created) {
				continue
			}
			// Only the count leaves out bot authors; a question a bot
			// opened (a weekly thread, a migration) still waits for a
			// person's answer, so its response counts.
			if !m.isBot(di.Author) {
				discussions++
			}
			if t, ok := m.firstResponse(di.Author, di.Comments); ok {
				discussionResp = append(discussionResp, t.Sub(di.Created).Seconds())
			}
		}

		for _, rel := range r.Releases {
			if !rel.Draft && rel.Published != nil && m.inW(*rel.Published) {
				releases++
			}
		}
		for _, ms := range r.Milestones {
			if ms.Closed == nil || ms.Due == nil || !m.inW(*ms.Closed) {
				continue
			}
			msDue++
			y, mo, da := ms.Due.UTC().Date()
			if !ms.Closed.After(time.Date(y, mo, da, 0, 0, 0, 0, time.UTC).Add(24 * time.Hour)) {
				msOnTime++
			}
		}
	}

	stats("pr_first_review_seconds", reviewWait, []string{"mean", "median"})
	add("pr_opened", float64(opened))
	add("pr_merged", float64(merged))
	stats("pr_merge_seconds", mergeTime, []string{"median"})
	add("contributors_active", float64(len(active)))
	newContributors := 0
	for _, t := range everMerged {
		if m.inW(t) {
			newContributors++
		}
	}
	add("contributors_new", float64(newContributors))
	add("contributors_total", float64(len(everMerged)))
	if merged > 0 {
		add("external_contribution_ratio", float64(external)/float64(merged))
		add("docs_pr_ratio", float64(docs)/float64(merged))
	}
	add("features_merged", float64(features))
	stats("issue_resolution_seconds", issueRes, []string{"mean", "median"})
	stats("issue_first_response_seconds", issueResp, []string{"median"})
	if issuesCreated > 0 {
		add("issue_closure_ratio", float64(issuesClosed)/float64(issuesCreated))
	}
	if bugs > 0 {
		add("bug_escape_ratio", float64(escaped)/float64(bugs))
	}
	add("stars", float64(stars))
	add("forks", float64(forks))
	add("watchers", float64(watchers))
	add("discussions_created", float64(discussions))
	stats("discussion_first_response_seconds", discussionResp, []string{"median"})
	add("releases", float64(releases))
	if msDue > 0 {
		add("milestones_on_time_ratio", float64(msOnTime)/float64(msDue))
	}
	if d.AlertsKnown {
		open := map[string]int{}
		fixed := map[string][]float64{}
		inScope := set(m.repos)
		for _, a := range d.Alerts {
			if !inScope[strings.ToLower(a.Repo)] {
				continue // an org's alerts include repositories outside the scope
			}
			sev := strings.ToLower(a.Severity)
			if a.State == "open" {
				open[sev]++
			}
			if a.Fixed != nil && m.inW(*a.Fixed) {
				fixed[sev] = append(fixed[sev], a.Fixed.Sub(a.Created).Seconds())
			}
		}
		for _, sev := range Severities {
			add("dependabot_alerts_open", float64(open[sev]), "severity", sev)
			stats("vulnerability_resolution_seconds", fixed[sev], []string{"median"}, "severity", sev)
		}
	}
	return out
}
