package github

import "time"

// Actor is an author as GitHub reported it. Bot is true for accounts of
// type Bot; logins ending in [bot] and configured bots are recognised when
// measuring, so that a changed bots setting needs no refetch.
type Actor struct {
	Login string `json:"l"`
	Bot   bool   `json:"b,omitempty"`
}

// Review is a submitted pull-request review (pending ones are not kept).
type Review struct {
	Author    Actor     `json:"a"`
	State     string    `json:"s"`
	Submitted time.Time `json:"t"`
}

// Comment is an issue or discussion comment, as far as first responses need.
type Comment struct {
	Author  Actor     `json:"a"`
	Created time.Time `json:"t"`
}

// PR is what the measurements need of a pull request.
type PR struct {
	Author  Actor     `json:"a"`
	Created time.Time `json:"c"`
	Updated time.Time `json:"u"`
	// Start is when the PR became ready for review: its creation, or for a
	// PR opened as a draft its first ReadyForReviewEvent; nil while a PR
	// opened as a draft has never been ready.
	Start   *time.Time `json:"s,omitempty"`
	Merged  *time.Time `json:"m,omitempty"`
	Labels  []string   `json:"lb,omitempty"`
	Reviews []Review   `json:"r,omitempty"`
	// Files are kept for merged pull requests only (for the docs ratio).
	Files []string `json:"f,omitempty"`
	ID    string   `json:"id"`
}

// Issue is what the measurements need of an issue.
type Issue struct {
	Author      Actor      `json:"a"`
	Created     time.Time  `json:"c"`
	Updated     time.Time  `json:"u"`
	Closed      *time.Time `json:"x,omitempty"` // the last close, when closed now
	StateReason string     `json:"sr,omitempty"`
	Labels      []string   `json:"lb,omitempty"`
	// Comments are the first comments, up to the first from someone other
	// than the author who is not a bot.
	Comments []Comment `json:"cm,omitempty"`
	ID       string    `json:"id"`
}

// Discussion is what the measurements need of a discussion.
type Discussion struct {
	Author   Actor     `json:"a"`
	Created  time.Time `json:"c"`
	Updated  time.Time `json:"u"`
	Comments []Comment `json:"cm,omitempty"`
	ID       string    `json:"id"`
}

// Release is a repository release.
type Release struct {
	Draft     bool       `json:"d,omitempty"`
	Published *time.Time `json:"p,omitempty"`
}

// Milestone is a closed milestone.
type Milestone struct {
	Due    *time.Time `json:"due,omitempty"`
	Closed *time.Time `json:"closed,omitempty"`
}

// Alert is a Dependabot alert.
type Alert struct {
	Repo     string     `json:"repo"`
	Severity string     `json:"sev"`
	State    string     `json:"st"`
	Created  time.Time  `json:"c"`
	Fixed    *time.Time `json:"f,omitempty"`
}

// Repo is what is known of one repository in scope.
type Repo struct {
	Stars    int `json:"stars"`
	Forks    int `json:"forks"`
	Watchers int `json:"watchers"`

	PRs         map[int]*PR         `json:"prs"`
	Issues      map[int]*Issue      `json:"issues"`
	Discussions map[int]*Discussion `json:"discussions"`
	Releases    []Release           `json:"releases,omitempty"`
	Milestones  []Milestone         `json:"milestones,omitempty"`

	// Progress of the first (or a full re-) sync of each history.
	Cursors map[string]string `json:"cursors,omitempty"`
	Done    map[string]bool   `json:"done,omitempty"`
}

func newRepo() *Repo {
	return &Repo{PRs: map[int]*PR{}, Issues: map[int]*Issue{}, Discussions: map[int]*Discussion{},
		Cursors: map[string]string{}, Done: map[string]bool{}}
}

// Data is the source's whole knowledge, persisted in its state directory.
type Data struct {
	Version int              `json:"version"`
	Repos   map[string]*Repo `json:"repos"`
	// Alerts per org (org scope) or repo (repo scope); nil when Dependabot
	// alerts could not be read.
	Alerts []Alert `json:"alerts,omitempty"`
	// AlertsKnown is false when permission to read alerts is missing.
	AlertsKnown bool `json:"alerts_known"`
	// CoreTeam holds the members of core_team_slug as last read.
	TeamMembers []string `json:"team_members,omitempty"`
	// SearchedUntil: histories are complete up to this time; the next run
	// searches for what was updated since (minus an overlap).
	SearchedUntil time.Time `json:"searched_until"`
	// SyncStarted is when the histories' first (or full) sync began; once
	// it completes, updates are searched from then.
	SyncStarted time.Time `json:"sync_started"`
	LastFull    time.Time `json:"last_full"`
	// Truncated counts items GitHub's own caps kept from view, by what.
	Truncated map[string]int `json:"truncated,omitempty"`
}

const dataVersion = 1

func newData() *Data {
	return &Data{Version: dataVersion, Repos: map[string]*Repo{}, Truncated: map[string]int{}}
}
