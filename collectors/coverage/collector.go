package coverage

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	gh "github.com/google/go-github/v60/github"
	"go.uber.org/zap"

	"github.com/bakhmach-hub/kpi_exporter/collectors"
	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
	secrets "github.com/bakhmach-hub/kpi_exporter/internal/redact"
	"github.com/bakhmach-hub/kpi_exporter/kpi"
)

// Type is the source type name.
const Type = "coverage"

// maxDownload bounds one downloaded report or artifact.
const maxDownload = 2 << 30

func init() { collectors.Register(Type, New) }

// Settings of a coverage source.
type Settings struct {
	// GitHub connection, needed only by artifact inputs.
	GitHub  *githubapi.Settings `yaml:"github"`
	Reports []ReportSettings    `yaml:"reports"`
	// Limits bound what one report may cost (see Limits).
	Limits Limits `yaml:"limits"`
}

// ReportSettings name one report and the inputs merged into it.
type ReportSettings struct {
	Name string `yaml:"name"`
	// Format forces a format; empty detects it from the content.
	Format string `yaml:"format"`
	// StripPrefix lists path prefixes removed before merging, such as the
	// CI checkout directory.
	StripPrefix []string      `yaml:"strip_prefix"`
	Inputs      []InputConfig `yaml:"inputs"`
}

// InputConfig is one input: a local path or glob, a URL, or the newest
// artifact of a workflow on the default branch.
type InputConfig struct {
	Path            string          `yaml:"path"`
	URL             string          `yaml:"url"`
	BearerTokenFile string          `yaml:"bearer_token_file"`
	Artifact        *ArtifactConfig `yaml:"artifact"`
}

// ArtifactConfig names a workflow artifact.
type ArtifactConfig struct {
	Repo     string `yaml:"repo"`     // owner/name
	Workflow string `yaml:"workflow"` // file name, e.g. ci.yml
	Name     string `yaml:"name"`     // the artifact's name
}

// Collector is a coverage source.
type Collector struct {
	s       Settings
	baseDir string
	log     *zap.Logger
	http    *http.Client
	gh      *githubapi.Client

	mu sync.Mutex
	// Per input: what was parsed and what identifies it (modification time
	// and size, ETag, artifact id), so unchanged inputs are not read again.
	cache map[string]cached
	// Per report: the last good totals and when they were made.
	last   map[string]good
	errors map[string]int
}

type cached struct {
	key    string
	report *Report
}

type good struct {
	t  Totals
	at time.Time
}

// New builds a coverage source from its declaration.
func New(src kpi.Source, env collectors.Env) (collectors.Collector, error) {
	var s Settings
	if err := src.Settings.Decode(&s); err != nil {
		return nil, err
	}
	at := githubapi.SettingsErrorf(src.Settings)
	if len(s.Reports) == 0 {
		return nil, at("", "source %q (type coverage) needs reports", src.Name)
	}
	needGitHub := false
	names := map[string]bool{}
	for i, r := range s.Reports {
		p := fmt.Sprintf(".reports[%d]", i)
		if r.Name == "" || strings.ContainsAny(r.Name, "\"\\\n") || names[r.Name] {
			return nil, at(p+".name", "report %d needs a unique name", i)
		}
		names[r.Name] = true
		if r.Format != FormatAuto && !contains(Formats, r.Format) {
			return nil, at(p+".format", "format %q is not one of %v", r.Format, Formats)
		}
		if len(r.Inputs) == 0 {
			return nil, at(p+".inputs", "report %q has no inputs", r.Name)
		}
		for j, in := range r.Inputs {
			ip := fmt.Sprintf("%s.inputs[%d]", p, j)
			set := 0
			for _, b := range []bool{in.Path != "", in.URL != "", in.Artifact != nil} {
				if b {
					set++
				}
			}
			if set != 1 {
				return nil, at(ip, "an input is exactly one of path, url or artifact")
			}
			if in.URL != "" && !strings.HasPrefix(in.URL, "http://") && !strings.HasPrefix(in.URL, "https://") {
				return nil, at(ip+".url", "url %q is not http(s)", in.URL)
			}
			if in.Path != "" {
				if _, err := filepath.Match(in.Path, ""); err != nil {
					return nil, at(ip+".path", "glob %q: %v", in.Path, err)
				}
			}
			if a := in.Artifact; a != nil {
				needGitHub = true
				if strings.Count(a.Repo, "/") != 1 || a.Workflow == "" || a.Name == "" {
					return nil, at(ip+".artifact", "artifact needs repo (owner/name), workflow and name")
				}
			}
		}
	}
	c := &Collector{s: s, baseDir: env.BaseDir, log: env.Log(), http: &http.Client{},
		cache: map[string]cached{}, last: map[string]good{}, errors: map[string]int{}}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if needGitHub {
		if s.GitHub == nil {
			return nil, at("", "artifact inputs need the github settings (token_env, token_file or app)")
		}
		if err := s.GitHub.Validate(func(f, format string, args ...any) error { return at(".github"+f, format, args...) }); err != nil {
			return nil, err
		}
		client, err := githubapi.New(*s.GitHub, nil)
		if err != nil {
			return nil, err
		}
		c.gh = client
	}
	return c, nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Collect reads every report. A report that fails (a malformed input, a
// download error) keeps its last good numbers, with their time, and counts
// a parse error; the others go on.
func (c *Collector) Collect(ctx context.Context) ([]kpi.Measurement, error) {
	var out []kpi.Measurement
	for _, rs := range c.s.Reports {
		t, err := c.report(ctx, rs)
		c.mu.Lock()
		if err != nil {
			c.errors[rs.Name]++
			c.log.Warn("coverage report failed; keeping its last good numbers", zap.String("report", rs.Name), zap.Error(err))
		} else {
			c.last[rs.Name] = good{t: t, at: time.Now()}
		}
		g, ok := c.last[rs.Name]
		errs := c.errors[rs.Name]
		c.mu.Unlock()
		label := kpi.Labels{{Name: "report", Value: rs.Name}}
		out = append(out, kpi.Measurement{Name: "parse_errors_total", Kind: kpi.Counter, Value: float64(errs), Labels: label})
		if ok {
			out = append(out, measurements(g.t, label, g.at)...)
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, nil
}

// measurements are a report's numbers: covered and total counts of each
// kind the formats had, the ratio when the total is not 0, the Codecov
// split, and whether the header disagreed.
func measurements(t Totals, ls kpi.Labels, at time.Time) []kpi.Measurement {
	var out []kpi.Measurement
	add := func(name string, v float64) {
		out = append(out, kpi.Measurement{Name: name, Value: v, Labels: ls, Time: at})
	}
	for _, k := range []struct {
		name string
		c    Count
		has  bool
	}{{"lines", t.Lines, t.hasLines}, {"branches", t.Branches, t.hasBranches}, {"functions", t.Functions, t.hasFunctions}, {"statements", t.Statements, t.hasStatements}} {
		if !k.has {
			continue
		}
		add(k.name+"_covered", float64(k.c.Covered))
		add(k.name+"_total", float64(k.c.Total))
		if k.c.Total > 0 {
			add(k.name+"_ratio", float64(k.c.Covered)/float64(k.c.Total))
		}
	}
	add("codecov_hits", float64(t.Hits))
	add("codecov_misses", float64(t.Misses))
	add("codecov_partials", float64(t.Partials))
	mismatch := 0.0
	if t.headerMismatch {
		mismatch = 1
	}
	add("header_mismatch", mismatch)
	return out
}

func (c *Collector) report(ctx context.Context, rs ReportSettings) (Totals, error) {
	var all []*Report
	for i, in := range rs.Inputs {
		parts, err := c.input(ctx, rs, i, in)
		if err != nil {
			return Totals{}, err
		}
		all = append(all, parts...)
	}
	if len(all) == 0 {
		return Totals{}, fmt.Errorf("report %s has no input", rs.Name)
	}
	// One input is counted as it is; several are merged into a copy (the
	// parsed inputs stay cached, unchanged, for the next run).
	merged := all[0]
	if len(all) > 1 {
		merged = NewReport(rs.StripPrefix)
		merged.SetLimits(c.s.Limits)
		for _, p := range all {
			merged.Merge(p)
		}
	}
	t := merged.Totals()
	t.headerMismatch = merged.HeaderMismatch
	return t, nil
}

// input returns the parsed reports of one input, from the cache when the
// input has not changed.
func (c *Collector) input(ctx context.Context, rs ReportSettings, i int, in InputConfig) ([]*Report, error) {
	switch {
	case in.Path != "":
		pattern := in.Path
		if !filepath.IsAbs(pattern) && c.baseDir != "" {
			pattern = filepath.Join(c.baseDir, pattern)
		}
		files, err := filepath.Glob(pattern)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no file matches %s", pattern)
		}
		sort.Strings(files)
		var out []*Report
		for _, f := range files {
			fi, err := os.Stat(f)
			if err != nil {
				return nil, err
			}
			r, err := c.cachedParse(rs, f, fmt.Sprint(fi.ModTime().UnixNano(), fi.Size()), func() (io.ReadCloser, error) { return os.Open(f) })
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	case in.URL != "":
		r, err := c.fetchURL(ctx, rs, in)
		if err != nil {
			return nil, err
		}
		return []*Report{r}, nil
	default:
		return c.artifact(ctx, rs, in.Artifact)
	}
}

func (c *Collector) cachedParse(rs ReportSettings, name, key string, open func() (io.ReadCloser, error)) (*Report, error) {
	id := rs.Name + "\x00" + name
	c.mu.Lock()
	hit, ok := c.cache[id]
	c.mu.Unlock()
	if ok && hit.key == key {
		return hit.report, nil
	}
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	r := NewReport(rs.StripPrefix)
	r.SetLimits(c.s.Limits)
	if err := Parse(name, rc, rs.Format, r); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cache[id] = cached{key: key, report: r}
	c.mu.Unlock()
	return r, nil
}

func (c *Collector) fetchURL(ctx context.Context, rs ReportSettings, in InputConfig) (*Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.URL, nil)
	if err != nil {
		return nil, err
	}
	if in.BearerTokenFile != "" {
		tok, err := os.ReadFile(in.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("bearer_token_file: %w", err)
		}
		secrets.Register(string(tok))
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	id := rs.Name + "\x00" + in.URL
	c.mu.Lock()
	prev, ok := c.cache[id]
	c.mu.Unlock()
	if ok && prev.key != "" {
		req.Header.Set("If-None-Match", prev.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", redact(in.URL), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified && ok {
		return prev.report, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", redact(in.URL), resp.Status)
	}
	r := NewReport(rs.StripPrefix)
	r.SetLimits(c.s.Limits)
	if err := Parse(redact(in.URL), io.LimitReader(resp.Body, maxDownload), rs.Format, r); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cache[id] = cached{key: resp.Header.Get("ETag"), report: r}
	c.mu.Unlock()
	return r, nil
}

// redact drops credentials and the query from a URL for messages.
func redact(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if at := strings.LastIndex(u, "@"); at > 0 {
		if s := strings.Index(u, "://"); s >= 0 && s < at {
			u = u[:s+3] + u[at+1:]
		}
	}
	return u
}

// artifact reads the newest artifact of the workflow on the default branch:
// the newest successful run that has it.
func (c *Collector) artifact(ctx context.Context, rs ReportSettings, a *ArtifactConfig) ([]*Report, error) {
	owner, name, _ := strings.Cut(a.Repo, "/")
	rest := c.gh.REST
	repo, _, err := rest.Repositories.Get(ctx, owner, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", a.Repo, err)
	}
	runs, _, err := rest.Actions.ListWorkflowRunsByFileName(ctx, owner, name, a.Workflow, &gh.ListWorkflowRunsOptions{
		Branch: repo.GetDefaultBranch(), Status: "success", ListOptions: gh.ListOptions{PerPage: 10}})
	if err != nil {
		return nil, fmt.Errorf("%s workflow %s: %w", a.Repo, a.Workflow, err)
	}
	for _, run := range runs.WorkflowRuns {
		list, _, err := rest.Actions.ListWorkflowRunArtifacts(ctx, owner, name, run.GetID(), &gh.ListOptions{PerPage: 100})
		if err != nil {
			return nil, fmt.Errorf("%s run %d artifacts: %w", a.Repo, run.GetID(), err)
		}
		for _, art := range list.Artifacts {
			if art.GetName() != a.Name || art.GetExpired() {
				continue
			}
			return c.artifactReports(ctx, rs, owner, name, art)
		}
	}
	return nil, fmt.Errorf("no artifact %q in the last successful runs of %s on %s", a.Name, a.Workflow, repo.GetDefaultBranch())
}

func (c *Collector) artifactReports(ctx context.Context, rs ReportSettings, owner, name string, art *gh.Artifact) ([]*Report, error) {
	id := fmt.Sprintf("%s\x00artifact:%s/%s:%s", rs.Name, owner, name, art.GetName())
	key := fmt.Sprint(art.GetID())
	c.mu.Lock()
	hit, ok := c.cache[id]
	c.mu.Unlock()
	if ok && hit.key == key {
		return []*Report{hit.report}, nil
	}
	u, _, err := c.gh.REST.Actions.DownloadArtifact(ctx, owner, name, art.GetID(), 0)
	if err != nil {
		return nil, fmt.Errorf("artifact %d: %w", art.GetID(), err)
	}
	// The download URL is pre-signed: no credentials go there.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("artifact %d download: %w", art.GetID(), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("artifact %d download: %s", art.GetID(), resp.Status)
	}
	tmp, err := os.CreateTemp("", "kpi-coverage-*.zip")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := io.Copy(tmp, io.LimitReader(resp.Body, maxDownload+1))
	if err != nil {
		return nil, fmt.Errorf("artifact %d download: %w", art.GetID(), err)
	}
	if n > maxDownload {
		return nil, fmt.Errorf("artifact %d is larger than %d bytes", art.GetID(), int64(maxDownload))
	}
	zr, err := zip.NewReader(tmp, n)
	if err != nil {
		return nil, fmt.Errorf("artifact %d: %w", art.GetID(), err)
	}
	merged := NewReport(rs.StripPrefix)
	merged.SetLimits(c.s.Limits)
	parsed := 0
	for _, zf := range zr.File {
		if zf.FileInfo().IsDir() {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			return nil, fmt.Errorf("artifact %d %s: %w", art.GetID(), zf.Name, err)
		}
		r := NewReport(rs.StripPrefix)
		r.SetLimits(c.s.Limits)
		entry := fmt.Sprintf("artifact:%s/%s", art.GetName(), path.Clean(zf.Name))
		err = Parse(entry, rc, rs.Format, r)
		rc.Close()
		if err != nil {
			if rs.Format == FormatAuto && errors.Is(err, ErrUnknownFormat) {
				continue // other files of the artifact (an HTML report, say)
			}
			return nil, err
		}
		merged.Merge(r)
		parsed++
	}
	if parsed == 0 {
		return nil, fmt.Errorf("artifact %q holds no coverage report", art.GetName())
	}
	c.mu.Lock()
	c.cache[id] = cached{key: key, report: merged}
	c.mu.Unlock()
	return []*Report{merged}, nil
}
