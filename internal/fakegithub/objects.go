package fakegithub

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// root builds the query root; objects are made on demand, so a large
// dataset costs only what a query touches. Called with f.mu held.
func (f *Server) root(cost, remaining int) Obj {
	return Obj{
		"rateLimit": Obj{"cost": cost, "remaining": remaining, "limit": 5000, "used": 5000 - remaining,
			"nodeCount": 0, "resetAt": iso(f.Now().Add(time.Hour))},
		"repository": Resolver(func(args map[string]any) (any, error) {
			owner, _ := args["owner"].(string)
			name, _ := args["name"].(string)
			r := f.find(owner, name)
			if r == nil {
				return nil, fmt.Errorf("Could not resolve to a Repository with the name '%s/%s'.", owner, name) //nolint:staticcheck // GitHub's own wording
			}
			return f.repoObj(r), nil
		}),
		"node": Resolver(func(args map[string]any) (any, error) {
			id, _ := args["id"].(string)
			return f.nodeByID(id)
		}),
		"search": Resolver(f.search),
	}
}

func actorObj(a *Actor) any {
	if a == nil {
		return nil
	}
	t := "User"
	if a.Bot {
		t = "Bot"
	}
	return Obj{"__typename": t, "login": a.Login}
}

func labelsConn(labels []string) Resolver {
	return connResolver(func(map[string]any) []Obj {
		out := make([]Obj, len(labels))
		for i, l := range labels {
			out[i] = Obj{"name": l}
		}
		return out
	})
}

func commentsConn(cs []Comment) Resolver {
	return connResolver(func(map[string]any) []Obj {
		sorted := append([]Comment(nil), cs...)
		sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Created.Before(sorted[j].Created) })
		out := make([]Obj, len(sorted))
		for i := range sorted {
			a := sorted[i].Author
			out[i] = Obj{"author": actorObj(&a), "createdAt": iso(sorted[i].Created)}
		}
		return out
	})
}

func id(kind string, r *Repo, n int) string { return kind + "|" + r.FullName() + "|" + strconv.Itoa(n) }

func (f *Server) prObj(r *Repo, p *PR) Obj {
	var merged any
	if p.Merged != nil {
		merged = iso(*p.Merged)
	}
	return Obj{
		"__typename": "PullRequest", "id": id("PR", r, p.Number), "number": p.Number,
		"createdAt": iso(p.Created), "updatedAt": iso(p.Updated), "isDraft": p.Draft, "mergedAt": merged,
		"author": actorObj(p.Author), "repository": Obj{"nameWithOwner": r.FullName()},
		"labels": labelsConn(p.Labels),
		"reviews": connResolver(func(map[string]any) []Obj {
			rs := append([]Review(nil), p.Reviews...)
			sort.SliceStable(rs, func(i, j int) bool { return rs[i].Submitted.Before(rs[j].Submitted) })
			out := make([]Obj, len(rs))
			for i := range rs {
				a := rs[i].Author
				var sub any
				if rs[i].State != "PENDING" {
					sub = iso(rs[i].Submitted)
				}
				out[i] = Obj{"author": actorObj(&a), "state": rs[i].State, "submittedAt": sub}
			}
			return out
		}),
		"timelineItems": connResolver(func(args map[string]any) []Obj {
			want := map[string]bool{}
			if types, ok := args["itemTypes"].([]any); ok {
				for _, t := range types {
					want[fmt.Sprint(t)] = true
				}
			}
			evs := append([]Event(nil), p.Events...)
			sort.SliceStable(evs, func(i, j int) bool { return evs[i].At.Before(evs[j].At) })
			var out []Obj
			for _, e := range evs {
				typ, item := "ConvertToDraftEvent", "CONVERT_TO_DRAFT_EVENT"
				if e.Ready {
					typ, item = "ReadyForReviewEvent", "READY_FOR_REVIEW_EVENT"
				}
				if len(want) > 0 && !want[item] {
					continue
				}
				out = append(out, Obj{"__typename": typ, "createdAt": iso(e.At)})
			}
			return out
		}),
		"files": connResolver(func(map[string]any) []Obj {
			out := make([]Obj, len(p.Files))
			for i, path := range p.Files {
				out[i] = Obj{"path": path}
			}
			return out
		}),
	}
}

func (f *Server) issueObj(r *Repo, is *Issue) Obj {
	state, closed := "OPEN", any(nil)
	if is.Closed != nil {
		state, closed = "CLOSED", iso(*is.Closed)
	}
	var reason any
	if is.StateReason != "" {
		reason = is.StateReason
	}
	a := is.Author
	return Obj{
		"__typename": "Issue", "id": id("I", r, is.Number), "number": is.Number,
		"createdAt": iso(is.Created), "updatedAt": iso(is.Updated), "closedAt": closed, "state": state, "stateReason": reason,
		"author": actorObj(&a), "repository": Obj{"nameWithOwner": r.FullName()},
		"labels": labelsConn(is.Labels), "comments": commentsConn(is.Comments),
	}
}

func (f *Server) discussionObj(r *Repo, d *Discussion) Obj {
	a := d.Author
	return Obj{
		"__typename": "Discussion", "id": id("D", r, d.Number), "number": d.Number,
		"createdAt": iso(d.Created), "updatedAt": iso(d.Updated), "author": actorObj(&a),
		"repository": Obj{"nameWithOwner": r.FullName()}, "comments": commentsConn(d.Comments),
	}
}

// ordered sorts by the orderBy argument ({field: CREATED_AT|UPDATED_AT,
// direction: ASC|DESC}); created and updated give each item's times.
func ordered[T any](items []T, args map[string]any, created, updated func(T) time.Time) []T {
	out := append([]T(nil), items...)
	field, dir := "CREATED_AT", "ASC"
	if ob, ok := args["orderBy"].(map[string]any); ok {
		field, _ = ob["field"].(string)
		dir, _ = ob["direction"].(string)
	}
	key := created
	if field == "UPDATED_AT" {
		key = updated
	}
	sort.SliceStable(out, func(i, j int) bool {
		if dir == "DESC" {
			return key(out[i]).After(key(out[j]))
		}
		return key(out[i]).Before(key(out[j]))
	})
	return out
}

func (f *Server) repoObj(r *Repo) Obj {
	return Obj{
		"__typename": "Repository", "nameWithOwner": r.FullName(), "hasDiscussionsEnabled": true,
		"pullRequests": connResolver(func(args map[string]any) []Obj {
			ps := ordered(r.PRs, args, func(p *PR) time.Time { return p.Created }, func(p *PR) time.Time { return p.Updated })
			out := make([]Obj, len(ps))
			for i, p := range ps {
				out[i] = f.prObj(r, p)
			}
			return out
		}),
		"issues": connResolver(func(args map[string]any) []Obj {
			is := ordered(r.Issues, args, func(i *Issue) time.Time { return i.Created }, func(i *Issue) time.Time { return i.Updated })
			out := make([]Obj, len(is))
			for i, x := range is {
				out[i] = f.issueObj(r, x)
			}
			return out
		}),
		"discussions": connResolver(func(args map[string]any) []Obj {
			ds := ordered(r.Discussions, args, func(d *Discussion) time.Time { return d.Created }, func(d *Discussion) time.Time { return d.Updated })
			out := make([]Obj, len(ds))
			for i, x := range ds {
				out[i] = f.discussionObj(r, x)
			}
			return out
		}),
	}
}

func (f *Server) nodeByID(nid string) (any, error) {
	parts := strings.Split(nid, "|")
	if len(parts) != 3 {
		return nil, fmt.Errorf("Could not resolve to a node with the global id of '%s'", nid) //nolint:staticcheck // GitHub's own wording
	}
	owner, name, _ := strings.Cut(parts[1], "/")
	r := f.find(owner, name)
	n, _ := strconv.Atoi(parts[2])
	if r != nil {
		switch parts[0] {
		case "PR":
			for _, p := range r.PRs {
				if p.Number == n {
					return f.prObj(r, p), nil
				}
			}
		case "I":
			for _, is := range r.Issues {
				if is.Number == n {
					return f.issueObj(r, is), nil
				}
			}
		case "D":
			for _, d := range r.Discussions {
				if d.Number == n {
					return f.discussionObj(r, d), nil
				}
			}
		}
	}
	return nil, fmt.Errorf("Could not resolve to a node with the global id of '%s'", nid) //nolint:staticcheck // GitHub's own wording
}

// search understands the qualifiers the collectors send: org:, repo: (ORed
// with each other) and updated:A..B or updated:>=A. Results come newest
// update first; only the first 1,000 are reachable, as on GitHub.
func (f *Server) search(args map[string]any) (any, error) {
	q, _ := args["query"].(string)
	typ, _ := args["type"].(string)
	var orgs, repos []string
	var from, to time.Time
	for _, tok := range strings.Fields(q) {
		k, v, _ := strings.Cut(tok, ":")
		switch k {
		case "org":
			orgs = append(orgs, strings.ToLower(v))
		case "repo":
			repos = append(repos, strings.ToLower(v))
		case "updated":
			var err error
			if a, b, ok := strings.Cut(v, ".."); ok {
				if from, err = time.Parse(time.RFC3339, a); err == nil {
					to, err = time.Parse(time.RFC3339, b)
				}
			} else if strings.HasPrefix(v, ">=") {
				from, err = time.Parse(time.RFC3339, strings.TrimPrefix(v, ">="))
			} else {
				err = fmt.Errorf("unsupported")
			}
			if err != nil {
				return nil, fmt.Errorf("the fake cannot read %q", tok)
			}
		default:
			return nil, fmt.Errorf("the fake does not know the qualifier %q", tok)
		}
	}
	match := func(r *Repo) bool {
		for _, o := range orgs {
			if strings.ToLower(r.Owner) == o {
				return true
			}
		}
		for _, x := range repos {
			if strings.ToLower(r.FullName()) == x {
				return true
			}
		}
		return false
	}
	inRange := func(t time.Time) bool {
		return (from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to))
	}
	type hit struct {
		updated time.Time
		obj     func() Obj
	}
	var hits []hit
	for _, r := range f.Repos {
		if !match(r) {
			continue
		}
		switch typ {
		case "ISSUE":
			for _, p := range r.PRs {
				if inRange(p.Updated) {
					r, p := r, p
					hits = append(hits, hit{p.Updated, func() Obj { return f.prObj(r, p) }})
				}
			}
			for _, is := range r.Issues {
				if inRange(is.Updated) {
					r, is := r, is
					hits = append(hits, hit{is.Updated, func() Obj { return f.issueObj(r, is) }})
				}
			}
		case "DISCUSSION":
			for _, d := range r.Discussions {
				if inRange(d.Updated) {
					r, d := r, d
					hits = append(hits, hit{d.Updated, func() Obj { return f.discussionObj(r, d) }})
				}
			}
		default:
			return nil, fmt.Errorf("the fake does not search type %s", typ)
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].updated.After(hits[j].updated) })
	total := len(hits)
	if len(hits) > 1000 {
		hits = hits[:1000]
	}
	objs := make([]Obj, len(hits))
	for i, h := range hits {
		objs[i] = h.obj()
	}
	conn, err := connection(objs, args)
	if err != nil {
		return nil, err
	}
	conn["issueCount"] = 0
	conn["discussionCount"] = 0
	if typ == "ISSUE" {
		conn["issueCount"] = total
	} else {
		conn["discussionCount"] = total
	}
	conn["repositoryCount"], conn["userCount"], conn["wikiCount"], conn["codeCount"] = 0, 0, 0, 0
	return conn, nil
}
