package github

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/shurcooL/githubv4"

	"github.com/bakhmach-hub/kpi_exporter/collectors/githubapi"
)

func githubapiSettings(url string) githubapi.Settings {
	return githubapi.Settings{TokenEnv: "FAKE_GH_TOKEN", BaseURL: url + "/", GraphQLURL: url + "/graphql"}
}

type captureRT struct{ body []byte }

func (c *captureRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.body, _ = io.ReadAll(r.Body)
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader([]byte(`{"data":null}`))), Request: r}, nil
}

// renderQuery returns the document githubv4 makes of a query struct.
func renderQuery(t *testing.T, q any) string {
	t.Helper()
	rt := &captureRT{}
	c := githubv4.NewClient(&http.Client{Transport: rt})
	cursor := githubv4.String("x")
	var vars map[string]any
	switch q.(type) {
	case *prPageQuery, *issuePageQuery, *discussionPageQuery:
		vars = map[string]any{"owner": githubv4.String("o"), "name": githubv4.String("n"), "cursor": &cursor}
	case *searchIssuesQuery, *searchDiscussionsQuery:
		vars = map[string]any{"q": githubv4.String("org:o"), "cursor": &cursor}
	default:
		vars = map[string]any{"id": githubv4.ID("x"), "cursor": cursor}
	}
	c.Query(context.Background(), q, vars)
	var req struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(rt.body, &req); err != nil {
		t.Fatal(err)
	}
	return req.Query
}
