// Tests of the deployment artefacts and of the generated queries against the
// real Kubernetes API types, Kustomize, Helm, the Prometheus query parser and
// a real Prometheus server. They live in the tools module so that these large
// dependencies stay out of the daemon's module.
package tools

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// decoded holds the objects of a rendering, decoded strictly: a field the
// Kubernetes (or Prometheus Operator) API does not have fails the test.
type decoded struct {
	deployments     []appsv1.Deployment
	services        []corev1.Service
	serviceAccounts []corev1.ServiceAccount
	configMaps      []corev1.ConfigMap
	pvcs            []corev1.PersistentVolumeClaim
	serviceMonitors []monitoringv1.ServiceMonitor
	rules           []monitoringv1.PrometheusRule
	pdbs            []policyv1.PodDisruptionBudget
}

func decodeAll(t *testing.T, where string, docs []string) decoded {
	t.Helper()
	var d decoded
	for _, doc := range docs {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		var err error
		strict := func(v any) { err = yaml.UnmarshalStrict([]byte(doc), v) }
		switch head.Kind {
		case "Deployment":
			var o appsv1.Deployment
			strict(&o)
			d.deployments = append(d.deployments, o)
		case "Service":
			var o corev1.Service
			strict(&o)
			d.services = append(d.services, o)
		case "ServiceAccount":
			var o corev1.ServiceAccount
			strict(&o)
			d.serviceAccounts = append(d.serviceAccounts, o)
		case "ConfigMap":
			var o corev1.ConfigMap
			strict(&o)
			d.configMaps = append(d.configMaps, o)
		case "PersistentVolumeClaim":
			var o corev1.PersistentVolumeClaim
			strict(&o)
			d.pvcs = append(d.pvcs, o)
		case "ServiceMonitor":
			var o monitoringv1.ServiceMonitor
			strict(&o)
			d.serviceMonitors = append(d.serviceMonitors, o)
		case "PrometheusRule":
			var o monitoringv1.PrometheusRule
			strict(&o)
			d.rules = append(d.rules, o)
		case "PodDisruptionBudget":
			var o policyv1.PodDisruptionBudget
			strict(&o)
			d.pdbs = append(d.pdbs, o)
		default:
			t.Errorf("%s: unexpected kind %q", where, head.Kind)
		}
		if err != nil {
			t.Errorf("%s: %s does not decode strictly: %v", where, head.Kind, err)
		}
	}
	return d
}

func splitDocs(b []byte) []string { return strings.Split(string(b), "\n---\n") }

// checkHardened asserts the pod's security context and probes.
func checkHardened(t *testing.T, where string, d decoded) {
	t.Helper()
	if len(d.deployments) != 1 || len(d.services) != 1 || len(d.serviceAccounts) != 1 || len(d.configMaps) != 1 || len(d.pvcs) != 1 {
		t.Fatalf("%s: deployments %d services %d serviceaccounts %d configmaps %d pvcs %d", where,
			len(d.deployments), len(d.services), len(d.serviceAccounts), len(d.configMaps), len(d.pvcs))
	}
	dep := d.deployments[0]
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("%s: replicas %v", where, dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod not non-root", where)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers", where, len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("%s: container security context %+v", where, sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/-/healthy" {
		t.Errorf("%s: liveness probe %+v", where, c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/-/ready" {
		t.Errorf("%s: readiness probe %+v", where, c.ReadinessProbe)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s: resources %+v", where, c.Resources)
	}
	var cat string
	for k, v := range d.configMaps[0].Data {
		if k == "kpis.yaml" {
			cat = v
		}
	}
	want, _ := os.ReadFile("../examples/kpis.yaml")
	if strings.TrimSpace(cat) != strings.TrimSpace(string(want)) {
		t.Errorf("%s: the ConfigMap does not hold the catalogue", where)
	}
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKustomizeBase(t *testing.T) {
	d := decodeAll(t, "base", splitDocs(kustomize(t, "../deploy/kubernetes/base")))
	checkHardened(t, "base", d)
	if len(d.serviceMonitors)+len(d.rules) != 0 {
		t.Error("the base has operator resources")
	}
	// All source secrets from one Secret, as with Helm's existingSecret.
	if from := d.deployments[0].Spec.Template.Spec.Containers[0].EnvFrom; len(from) != 1 || from[0].SecretRef == nil || from[0].SecretRef.Name != "kpi-exporter-secrets" {
		t.Errorf("base: the secrets are not taken with envFrom: %+v", from)
	}
	// The raw files decode strictly too.
	files, _ := filepath.Glob("../deploy/kubernetes/base/*.yaml")
	for _, f := range files {
		if b := filepath.Base(f); b == "kustomization.yaml" || b == "kpis.yaml" || b == "values.yaml" {
			continue
		}
		b, _ := os.ReadFile(f)
		decodeAll(t, f, splitDocs(b))
	}
}

func TestKustomizeOperatorOverlay(t *testing.T) {
	d := decodeAll(t, "overlay", splitDocs(kustomize(t, "../deploy/kubernetes/overlays/prometheus-operator")))
	checkHardened(t, "overlay", d)
	if len(d.serviceMonitors) != 1 || len(d.rules) != 1 {
		t.Fatalf("servicemonitors %d prometheusrules %d", len(d.serviceMonitors), len(d.rules))
	}
	sm := d.serviceMonitors[0]
	if sm.Labels["release"] != "prometheus" || sm.Spec.Endpoints[0].Port != "http-metrics" ||
		sm.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "kpi-exporter" {
		t.Errorf("servicemonitor %+v", sm)
	}
	if svc := d.services[0]; svc.Labels["app.kubernetes.io/name"] != "kpi-exporter" {
		t.Errorf("the service lacks the label the ServiceMonitor selects: %v", svc.Labels)
	}
	if n := countAlerts(d.rules[0]); n < 8 {
		t.Errorf("PrometheusRule has %d alerts", n)
	}
}

func countAlerts(r monitoringv1.PrometheusRule) int {
	n := 0
	for _, g := range r.Spec.Groups {
		for _, rule := range g.Rules {
			if rule.Alert != "" {
				n++
			}
		}
	}
	return n
}

// helmTemplate renders the chart with vals, as `helm template` does.
func helmTemplate(t *testing.T, vals map[string]any) ([]string, error) {
	t.Helper()
	ch, err := loader.Load("../deploy/helm/kpi-exporter")
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "kpi", Namespace: "monitoring", IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	var docs []string
	for _, n := range names {
		if strings.HasSuffix(n, ".tpl") {
			continue
		}
		docs = append(docs, splitDocs([]byte(out[n]))...)
	}
	return docs, nil
}

// TestHelmTemplatePostgres: with the PostgreSQL backend the chart runs the
// replicas asked for, rolling, spread over nodes, under a
// PodDisruptionBudget, the DSN from its Secret as a file and each pod's name
// as its replica id, and no volume for state; without the Secret it fails
// with a message naming the value.
func TestHelmTemplatePostgres(t *testing.T) {
	docs, err := helmTemplate(t, map[string]any{"replicas": 3, "state": map[string]any{"backend": "postgres",
		"postgres": map[string]any{"dsnSecret": "kpi-state-dsn"}}})
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	d := decodeAll(t, "helm postgres", docs)
	if len(d.deployments) != 1 || len(d.pvcs) != 0 || len(d.pdbs) != 1 {
		t.Fatalf("deployments %d pvcs %d pdbs %d", len(d.deployments), len(d.pvcs), len(d.pdbs))
	}
	dep := d.deployments[0]
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 || dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		t.Errorf("replicas %v strategy %v", dep.Spec.Replicas, dep.Spec.Strategy.Type)
	}
	pdb := d.pdbs[0]
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.Selector.MatchLabels["app.kubernetes.io/instance"] != "kpi" ||
		dep.Spec.Template.Labels["app.kubernetes.io/instance"] != "kpi" {
		t.Errorf("pdb %+v does not select the pods %v", pdb.Spec, dep.Spec.Template.Labels)
	}
	pod := dep.Spec.Template.Spec
	aff := pod.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 ||
		aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" {
		t.Errorf("anti-affinity %+v", aff)
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range pod.Containers[0].Env {
		env[e.Name] = e
	}
	if env["KPI_STATE_DSN_FILE"].Value != "/run/secrets/kpi-state/dsn" || env["KPI_STATE_DIR"].Value != "" ||
		env["KPI_HA_REPLICA_ID"].ValueFrom == nil || env["KPI_HA_REPLICA_ID"].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("env %+v", env)
	}
	var secret string
	for _, v := range pod.Volumes {
		if v.Name == "state-dsn" && v.Secret != nil && len(v.Secret.Items) == 1 && v.Secret.Items[0].Path == "dsn" {
			secret = v.Secret.SecretName
		}
		if v.Name == "state" {
			t.Error("a state volume with the PostgreSQL backend")
		}
	}
	if secret != "kpi-state-dsn" {
		t.Errorf("DSN secret %q", secret)
	}
	mounted := false
	for _, m := range pod.Containers[0].VolumeMounts {
		mounted = mounted || (m.Name == "state-dsn" && m.MountPath == "/run/secrets/kpi-state" && m.ReadOnly)
	}
	if !mounted {
		t.Error("the DSN secret is not mounted read-only at /run/secrets/kpi-state")
	}
	if docs, err := helmTemplate(t, map[string]any{"replicas": 3, "antiAffinity": "hard", "state": map[string]any{"backend": "postgres",
		"postgres": map[string]any{"dsnSecret": "s"}}}); err != nil || len(decodeAll(t, "hard", docs).deployments[0].Spec.Template.Spec.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("hard anti-affinity: %v", err)
	}
	if _, err := helmTemplate(t, map[string]any{"state": map[string]any{"backend": "postgres"}}); err == nil || !strings.Contains(err.Error(), "state.postgres.dsnSecret") {
		t.Errorf("no DSN secret: %v", err)
	}
	if _, err := helmTemplate(t, map[string]any{"state": map[string]any{"backend": "sqlite"}}); err == nil || !strings.Contains(err.Error(), "neither file nor postgres") {
		t.Errorf("an unknown backend: %v", err)
	}
	// The file backend stays one replica with a volume, whatever replicas says.
	docs, err = helmTemplate(t, map[string]any{"replicas": 3})
	if err != nil {
		t.Fatal(err)
	}
	if f := decodeAll(t, "helm file", docs); *f.deployments[0].Spec.Replicas != 1 || len(f.pvcs) != 1 || len(f.pdbs) != 0 {
		t.Errorf("file backend: replicas %d pvcs %d pdbs %d", *f.deployments[0].Spec.Replicas, len(f.pvcs), len(f.pdbs))
	}
}

func TestHelmTemplate(t *testing.T) {
	vals := map[string]any{"serviceMonitor": map[string]any{"enabled": true},
		"prometheusRule": map[string]any{"enabled": true, "for": map[string]any{"KpiExporterDown": "2m", "KpiValueStale": "1h"}, "jobSelector": `job="kpi"`},
		"existingSecret": "kpi-exporter-secrets", "pushTokensSecret": "kpi-exporter-push"}
	docs, err := helmTemplate(t, vals)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	d := decodeAll(t, "helm", docs)
	checkHardened(t, "helm", d)
	if len(d.serviceMonitors) != 1 || len(d.rules) != 1 || countAlerts(d.rules[0]) < 8 {
		t.Errorf("helm: servicemonitors %d, rules %d", len(d.serviceMonitors), len(d.rules))
	}
	if from := d.deployments[0].Spec.Template.Spec.Containers[0].EnvFrom; len(from) != 1 || from[0].SecretRef.Name != "kpi-exporter-secrets" {
		t.Errorf("helm: the secret is not referenced: %+v", from)
	}
	// The alert delays and the job selector are values.
	for _, g := range d.rules[0].Spec.Groups {
		for _, r := range g.Rules {
			got := ""
			if r.For != nil {
				got = string(*r.For)
			}
			switch r.Alert {
			case "KpiExporterDown":
				if got != "2m" || r.Expr.String() != `up{job="kpi"} == 0` {
					t.Errorf("helm: KpiExporterDown for %q expr %q", got, r.Expr.String())
				}
			case "KpiValueStale":
				if got != "1h" {
					t.Errorf("helm: KpiValueStale for %q", got)
				}
			case "KpiCollectorFailing":
				if got != "30m" {
					t.Errorf("helm: KpiCollectorFailing keeps its default, got %q", got)
				}
			}
		}
	}
	c := d.deployments[0].Spec.Template.Spec.Containers[0]
	pushEnv, pushMount := "", ""
	for _, e := range c.Env {
		if e.Name == "KPI_PUSH_TOKENS_FILE" {
			pushEnv = e.Value
		}
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "push-tokens" {
			pushMount = m.MountPath
		}
	}
	var pushSecret string
	for _, v := range d.deployments[0].Spec.Template.Spec.Volumes {
		if v.Name == "push-tokens" && v.Secret != nil {
			pushSecret = v.Secret.SecretName
		}
	}
	if pushEnv != "/run/secrets/kpi-push/tokens" || pushMount != "/run/secrets/kpi-push" || pushSecret != "kpi-exporter-push" {
		t.Errorf("helm: push tokens env %q mount %q secret %q", pushEnv, pushMount, pushSecret)
	}
	var buf bytes.Buffer
	for _, doc := range docs {
		fmt.Fprintln(&buf, doc)
	}
	if bytes.Contains(buf.Bytes(), []byte("<no value>")) {
		t.Error("helm: a template reads a value that is not set")
	}
}
