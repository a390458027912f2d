// Package deploy_test keeps the deployment artefacts equal to their sources:
// the catalogue copies in the Kustomize base and the Helm chart, and the
// rules in the chart and the prometheus-operator overlay.
package deploy_test

import (
	"bytes"
	"os"
	"testing"

	promrules "github.com/bakhmach-hub/kpi_exporter/deploy/prometheus"
)

func same(t *testing.T, copy, source string) {
	t.Helper()
	a, err1 := os.ReadFile(copy)
	b, err2 := os.ReadFile(source)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Errorf("%s differs from %s: copy it again (%v %v)", copy, source, err1, err2)
	}
}

func TestCopiesAreCurrent(t *testing.T) {
	for _, dir := range []string{"kubernetes/base", "helm/kpi-exporter/files"} {
		same(t, dir+"/kpis.yaml", "../examples/kpis.yaml")
		same(t, dir+"/values.yaml", "../examples/values.yaml")
	}
	same(t, "helm/kpi-exporter/files/rules.yaml", "prometheus/rules.yaml")

	want, err := promrules.PrometheusRule(promrules.Rules(promrules.Options{}), "kpi-exporter", map[string]string{"release": "prometheus"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile("kubernetes/overlays/prometheus-operator/prometheusrule.yaml")
	if !bytes.Equal(got, want) {
		t.Error("the overlay's prometheusrule.yaml is stale: run `go run ./cmd/kpi_exporter generate rules --format prometheusrule --label release=prometheus --out deploy/kubernetes/overlays/prometheus-operator/prometheusrule.yaml`")
	}
}
