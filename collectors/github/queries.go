package github

import (
	"sort"
	"time"

	"github.com/shurcooL/githubv4"
)

// The GraphQL documents the collector sends are made from these structs by
// githubv4; a test renders every one of them and validates it against
// GitHub's public schema.

type rateLimit struct {
	Cost      int
	Remaining int
}

type pageInfo struct {
	HasNextPage bool
	EndCursor   githubv4.String
}

type actor struct {
	Typename string `graphql:"__typename"`
	Login    string
}

func (a *actor) toActor() Actor {
	if a == nil {
		return Actor{Login: "ghost"} // a deleted account
	}
	return Actor{Login: a.Login, Bot: a.Typename == "Bot"}
}

type labelConn struct {
	Nodes    []struct{ Name string }
	PageInfo pageInfo
}

type reviewConn struct {
	Nodes []struct {
		Author      *actor
		State       string
		SubmittedAt *githubv4.DateTime
	}
	PageInfo pageInfo
}

type commentConn struct {
	Nodes []struct {
		Author    *actor
		CreatedAt githubv4.DateTime
	}
	PageInfo pageInfo
}

type fileConn struct {
	Nodes    []struct{ Path string }
	PageInfo pageInfo
}

// prFields is what is read of a pull request: 4 nested connections, so a
// page of 100 costs 401 requests, 4 points.
type prFields struct {
	ID            string
	Number        int
	CreatedAt     githubv4.DateTime
	UpdatedAt     githubv4.DateTime
	IsDraft       bool
	MergedAt      *githubv4.DateTime
	Author        *actor
	Labels        labelConn  `graphql:"labels(first: 20)"`
	Reviews       reviewConn `graphql:"reviews(first: 30)"`
	TimelineItems struct {
		Nodes []struct {
			Typename       string `graphql:"__typename"`
			ReadyForReview struct {
				CreatedAt githubv4.DateTime
			} `graphql:"... on ReadyForReviewEvent"`
			ConvertToDraft struct {
				CreatedAt githubv4.DateTime
			} `graphql:"... on ConvertToDraftEvent"`
		}
	} `graphql:"timelineItems(first: 5, itemTypes: [READY_FOR_REVIEW_EVENT, CONVERT_TO_DRAFT_EVENT])"`
	Files fileConn `graphql:"files(first: 50)"`
}

type issueFields struct {
	ID          string
	Number      int
	CreatedAt   githubv4.DateTime
	UpdatedAt   githubv4.DateTime
	ClosedAt    *githubv4.DateTime
	State       string
	StateReason *string
	Author      *actor
	Labels      labelConn   `graphql:"labels(first: 20)"`
	Comments    commentConn `graphql:"comments(first: 20)"`
}

type discussionFields struct {
	ID        string
	Number    int
	CreatedAt githubv4.DateTime
	UpdatedAt githubv4.DateTime
	Author    *actor
	Comments  commentConn `graphql:"comments(first: 20)"`
}

type prPageQuery struct {
	Repository *struct {
		PullRequests struct {
			Nodes    []prFields
			PageInfo pageInfo
		} `graphql:"pullRequests(first: 100, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC})"`
	} `graphql:"repository(owner: $owner, name: $name)"`
	RateLimit rateLimit
}

type issuePageQuery struct {
	Repository *struct {
		Issues struct {
			Nodes    []issueFields
			PageInfo pageInfo
		} `graphql:"issues(first: 100, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC})"`
	} `graphql:"repository(owner: $owner, name: $name)"`
	RateLimit rateLimit
}

type discussionPageQuery struct {
	Repository *struct {
		HasDiscussionsEnabled bool
		Discussions           struct {
			Nodes    []discussionFields
			PageInfo pageInfo
		} `graphql:"discussions(first: 100, after: $cursor, orderBy: {field: CREATED_AT, direction: ASC})"`
	} `graphql:"repository(owner: $owner, name: $name)"`
	RateLimit rateLimit
}

type repoRef struct {
	NameWithOwner string
}

// searchIssuesQuery finds pull requests and issues updated in a time range
// across the scope: steady-state runs cost a few points, not one query per
// repository.
type searchIssuesQuery struct {
	Search struct {
		IssueCount int
		PageInfo   pageInfo
		Nodes      []struct {
			Typename    string `graphql:"__typename"`
			PullRequest struct {
				prFields
				Repository repoRef
			} `graphql:"... on PullRequest"`
			Issue struct {
				issueFields
				Repository repoRef
			} `graphql:"... on Issue"`
		}
	} `graphql:"search(query: $q, type: ISSUE, first: 100, after: $cursor)"`
	RateLimit rateLimit
}

type searchDiscussionsQuery struct {
	Search struct {
		DiscussionCount int
		PageInfo        pageInfo
		Nodes           []struct {
			Typename   string `graphql:"__typename"`
			Discussion struct {
				discussionFields
				Repository repoRef
			} `graphql:"... on Discussion"`
		}
	} `graphql:"search(query: $q, type: DISCUSSION, first: 100, after: $cursor)"`
	RateLimit rateLimit
}

// Follow-up queries page a nested connection of one item whose first page
// did not hold what a measurement needs.

type moreReviewsQuery struct {
	Node struct {
		PullRequest struct {
			Reviews reviewConn `graphql:"reviews(first: 100, after: $cursor)"`
		} `graphql:"... on PullRequest"`
	} `graphql:"node(id: $id)"`
	RateLimit rateLimit
}

type moreFilesQuery struct {
	Node struct {
		PullRequest struct {
			Files fileConn `graphql:"files(first: 100, after: $cursor)"`
		} `graphql:"... on PullRequest"`
	} `graphql:"node(id: $id)"`
	RateLimit rateLimit
}

type moreLabelsQuery struct {
	Node struct {
		PullRequest struct {
			Labels labelConn `graphql:"labels(first: 100, after: $cursor)"`
		} `graphql:"... on PullRequest"`
		Issue struct {
			Labels labelConn `graphql:"labels(first: 100, after: $cursor)"`
		} `graphql:"... on Issue"`
	} `graphql:"node(id: $id)"`
	RateLimit rateLimit
}

type moreCommentsQuery struct {
	Node struct {
		Issue struct {
			Comments commentConn `graphql:"comments(first: 100, after: $cursor)"`
		} `graphql:"... on Issue"`
		Discussion struct {
			Comments commentConn `graphql:"comments(first: 100, after: $cursor)"`
		} `graphql:"... on Discussion"`
	} `graphql:"node(id: $id)"`
	RateLimit rateLimit
}

func ts(t githubv4.DateTime) time.Time { return t.UTC() }

func tsp(t *githubv4.DateTime) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// toPR converts a fetched pull request. Start follows the first of its
// ready-for-review and convert-to-draft events: a ReadyForReviewEvent first
// means it was opened as a draft and became ready then; a ConvertToDraftEvent
// first (or no event on a PR that is not a draft) means it was opened ready.
func (f *prFields) toPR() *PR {
	pr := &PR{ID: f.ID, Author: f.Author.toActor(), Created: ts(f.CreatedAt), Updated: ts(f.UpdatedAt), Merged: tsp(f.MergedAt)}
	type ev struct {
		t     time.Time
		ready bool
	}
	var evs []ev
	for _, n := range f.TimelineItems.Nodes {
		switch n.Typename {
		case "ReadyForReviewEvent":
			evs = append(evs, ev{ts(n.ReadyForReview.CreatedAt), true})
		case "ConvertToDraftEvent":
			evs = append(evs, ev{ts(n.ConvertToDraft.CreatedAt), false})
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].t.Before(evs[j].t) })
	switch {
	case len(evs) > 0 && evs[0].ready:
		s := evs[0].t
		pr.Start = &s
	case len(evs) > 0 || !f.IsDraft:
		s := pr.Created
		pr.Start = &s
	}
	for _, l := range f.Labels.Nodes {
		pr.Labels = append(pr.Labels, l.Name)
	}
	pr.Reviews = reviewsOf(f.Reviews)
	if pr.Merged != nil {
		for _, n := range f.Files.Nodes {
			pr.Files = append(pr.Files, n.Path)
		}
	}
	return pr
}

func reviewsOf(c reviewConn) []Review {
	var rs []Review
	for _, n := range c.Nodes {
		if n.SubmittedAt == nil || n.State == "PENDING" {
			continue
		}
		rs = append(rs, Review{Author: n.Author.toActor(), State: n.State, Submitted: ts(*n.SubmittedAt)})
	}
	return rs
}

func commentsOf(c commentConn) []Comment {
	cs := make([]Comment, 0, len(c.Nodes))
	for _, n := range c.Nodes {
		cs = append(cs, Comment{Author: n.Author.toActor(), Created: ts(n.CreatedAt)})
	}
	return cs
}

func (f *issueFields) toIssue() *Issue {
	is := &Issue{ID: f.ID, Author: f.Author.toActor(), Created: ts(f.CreatedAt), Updated: ts(f.UpdatedAt)}
	if f.State == "CLOSED" {
		is.Closed = tsp(f.ClosedAt)
	}
	if f.StateReason != nil {
		is.StateReason = *f.StateReason
	}
	for _, l := range f.Labels.Nodes {
		is.Labels = append(is.Labels, l.Name)
	}
	is.Comments = commentsOf(f.Comments)
	return is
}

func (f *discussionFields) toDiscussion() *Discussion {
	return &Discussion{ID: f.ID, Author: f.Author.toActor(), Created: ts(f.CreatedAt), Updated: ts(f.UpdatedAt), Comments: commentsOf(f.Comments)}
}
