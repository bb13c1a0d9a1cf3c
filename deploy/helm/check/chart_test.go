package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const (
	chart      = "../latchkey"
	production = "../values-production.yaml"
	release    = "latchkey"
	namespace  = "latchkey"
)

// need returns the path of a program the test needs. Under CI a missing
// program fails the test (CI must not pass by skipping); elsewhere the
// test is skipped.
func need(t *testing.T, name, how string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required (%s): %v", name, how, err)
		}
		t.Skipf("%s not found (%s)", name, how)
	}
	return p
}

func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(need(t, "helm", "bash .ci/tools.sh installs helm.sh/helm/v4/cmd/helm at its pinned version"), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, &helmError{err: err, stderr: stderr.String() + string(out)}
	}
	return out, nil
}

type helmError struct {
	err    error
	stderr string
}

func (e *helmError) Error() string { return e.err.Error() + ": " + e.stderr }

// render runs helm template and decodes its output strictly.
func render(t *testing.T, args ...string) []Object {
	t.Helper()
	out, err := helm(t, append([]string{"template", release, chart, "--namespace", namespace}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v", args, err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatalf("helm template %v: strict decoding:\n%v", args, err)
	}
	if len(objs) == 0 {
		t.Fatalf("helm template %v rendered nothing", args)
	}
	return objs
}

func must[T any](t *testing.T, objs []Object) *T {
	t.Helper()
	v, err := One[T](objs)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestHelmVersion(t *testing.T) {
	out, err := helm(t, "version", "--short")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "v4.") {
		t.Fatalf("helm version %q: want helm v4", out)
	}
	t.Logf("helm %s", strings.TrimSpace(string(out)))
}

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default values", nil},
		{"production values", []string{"-f", production}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helm(t, append([]string{"lint", "--strict", chart, "--namespace", namespace}, tc.args...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v", err)
			}
			if !strings.Contains(string(out), "1 chart(s) linted, 0 chart(s) failed") {
				t.Fatalf("helm lint --strict said:\n%s", out)
			}
			t.Logf("helm lint --strict (%s): %s", tc.name, lastLine(out))
		})
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// TestDecodeIsStrict shows that the decoder refuses what the API server
// would: a misspelt field, a field in the wrong case, a duplicate key, an
// unknown kind. Without it, the tests below could pass on a decoder that
// accepts anything.
func TestDecodeIsStrict(t *testing.T) {
	good := "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports:\n    - port: 80\n"
	if objs, err := Decode([]byte(good)); err != nil || len(objs) != 1 {
		t.Fatalf("a valid Service: %d objects, %v", len(objs), err)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", strings.Replace(good, "port: 80", "prot: 80", 1), `unknown field "spec.ports[0].prot"`},
		{"field in the wrong case", strings.Replace(good, "ports:", "Ports:", 1), `unknown field "spec.Ports"`},
		{"duplicate key", good + "spec: {}\n", `key "spec" already set`},
		{"unknown kind", strings.Replace(good, "kind: Service", "kind: Servise", 1), `unknown kind "Servise"`},
		{"wrong type", strings.Replace(good, "port: 80", "port: eighty", 1), `cannot unmarshal`},
		{"bad name", strings.Replace(good, "name: a", "name: A_B", 1), `not a DNS label`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte("---\n# Source: test\n" + tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// checkHardened asserts what every rendering must hold, whatever the
// values: the pod's security settings, probes on the server's health
// endpoints, no service account token, and selectors that match.
func checkHardened(t *testing.T, objs []Object) {
	t.Helper()
	dep := must[appsv1.Deployment](t, objs)
	pod := dep.Spec.Template
	ps := pod.Spec.SecurityContext
	if ps == nil || !isTrue(ps.RunAsNonRoot) || ps.RunAsUser == nil || *ps.RunAsUser != 65532 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, runAsUser 65532 (the image's user), seccomp RuntimeDefault", ps)
	}
	if !isFalse(pod.Spec.AutomountServiceAccountToken) {
		t.Error("the pod mounts a service account token")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	if sc == nil || !isTrue(sc.RunAsNonRoot) || sc.RunAsUser == nil || *sc.RunAsUser != 65532 ||
		!isTrue(sc.ReadOnlyRootFilesystem) || !isFalse(sc.AllowPrivilegeEscalation) || !isFalse(sc.Privileged) ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container securityContext %+v: want non-root 65532, read-only root, no privilege escalation, all capabilities dropped, seccomp RuntimeDefault", sc)
	}
	if !strings.HasPrefix(c.Image, "localhost/latchkey:") && !strings.Contains(c.Image, "/latchkey") {
		t.Errorf("image %q", c.Image)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: want cpu and memory requests and a memory limit", c.Resources)
	}
	// Probes: on the documented endpoints, on a port the container opens.
	for name, want := range map[string]struct {
		p    *corev1.Probe
		path string
	}{
		"startup": {c.StartupProbe, "/healthz"}, "liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"},
	} {
		if want.p == nil || want.p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		if want.p.HTTPGet.Path != want.path || containerPort(c, want.p.HTTPGet.Port.String()) == 0 {
			t.Errorf("%s probe GET %s on port %s: want %s on a port of the container", name, want.p.HTTPGet.Path, want.p.HTTPGet.Port.String(), want.path)
		}
	}
	// Every volume the container writes to is declared; / stays read-only.
	mounts := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = true
	}
	if !mounts["/data"] || !mounts["/tmp"] {
		t.Errorf("mounts %v: want /data (database, credentials file) and /tmp", mounts)
	}
	if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds <= 30 {
		t.Error("terminationGracePeriodSeconds must exceed --shutdown-timeout (30s) so that usage is flushed")
	}

	podLabels := labels.Set(pod.Labels)
	sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
	if err != nil || !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not match its pod labels %v (%v)", dep.Spec.Selector, pod.Labels, err)
	}

	sa := must[corev1.ServiceAccount](t, objs)
	if !isFalse(sa.AutomountServiceAccountToken) {
		t.Error("the ServiceAccount mounts its token")
	}
	if pod.Spec.ServiceAccountName != sa.Name {
		t.Errorf("pods run as %q, the chart's ServiceAccount is %q", pod.Spec.ServiceAccountName, sa.Name)
	}

	svc := must[corev1.Service](t, objs)
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("the Service's selector %v does not match the pod labels %v", svc.Spec.Selector, pod.Labels)
	}
	for _, p := range svc.Spec.Ports {
		if containerPort(c, p.TargetPort.String()) == 0 {
			t.Errorf("Service port %s targets %s, which the container does not open", p.Name, p.TargetPort.String())
		}
	}

	pdb := must[policyv1.PodDisruptionBudget](t, objs)
	psel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || psel.Empty() || !psel.Matches(podLabels) {
		t.Errorf("the PodDisruptionBudget's selector %v does not match the pod labels %v (%v)", pdb.Spec.Selector, pod.Labels, err)
	}
	if pdb.Spec.MaxUnavailable == nil && pdb.Spec.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
	// Nothing that holds a secret is written as a literal.
	for _, e := range c.Env {
		if strings.Contains(e.Value, "://") && !strings.HasPrefix(e.Value, "sqlite:") {
			t.Errorf("env %s is a literal URL; it must come from a Secret", e.Name)
		}
	}
}

func isTrue(b *bool) bool  { return b != nil && *b }
func isFalse(b *bool) bool { return b != nil && !*b }

// containerPort returns the number of the container's port given by name
// or number, or 0 if the container does not open it.
func containerPort(c corev1.Container, port string) int32 {
	for _, p := range c.Ports {
		if p.Name == port || port == itoa(p.ContainerPort) {
			return p.ContainerPort
		}
	}
	return 0
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func TestDefaultValues(t *testing.T) {
	objs := render(t)
	checkHardened(t, objs)
	dep := must[appsv1.Deployment](t, objs)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1 (SQLite)", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %s: SQLite needs Recreate, so that two pods never open one file", dep.Spec.Strategy.Type)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if e := env(c, "LATCHKEY_DATABASE_URL"); e == nil || e.Value != "sqlite:/data/latchkey.db" {
		t.Errorf("LATCHKEY_DATABASE_URL %+v, want sqlite:/data/latchkey.db", e)
	}
	pvc := must[corev1.PersistentVolumeClaim](t, objs)
	var claim string
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "data" && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claim != pvc.Name {
		t.Errorf("/data is on claim %q, the chart's claim is %q", claim, pvc.Name)
	}
	for _, kind := range []string{"ServiceMonitor", "NetworkPolicy"} {
		if n := Count(objs, kind); n != 0 {
			t.Errorf("%d %s rendered by default, want none", n, kind)
		}
	}
	if e := env(c, "LATCHKEY_TRUSTED_PROXIES"); e != nil {
		t.Errorf("LATCHKEY_TRUSTED_PROXIES %q by default; want it unset", e.Value)
	}
	if e := env(c, "LATCHKEY_AUTHORIZE_ADDR"); e != nil || containerPort(c, "forward-auth") != 0 {
		t.Errorf("LATCHKEY_AUTHORIZE_ADDR %+v and port forward-auth %d by default; want neither", e, containerPort(c, "forward-auth"))
	}
	t.Logf("default values: %d manifests, all decoded strictly: %s", len(objs), kindsOf(objs))
}

func kindsOf(objs []Object) string {
	var k []string
	for _, o := range objs {
		k = append(k, o.Kind)
	}
	return strings.Join(k, ", ")
}

// prodValues is the part of values-production.yaml the test compares with
// what was rendered.
type prodValues struct {
	ReplicaCount int32 `json:"replicaCount"`
	Database     struct {
		ExistingSecret string `json:"existingSecret"`
		SecretKey      string `json:"secretKey"`
	} `json:"database"`
	TrustedProxies []string                    `json:"trustedProxies"`
	Resources      corev1.ResourceRequirements `json:"resources"`
	Metrics        struct {
		Port           int32 `json:"port"`
		ServiceMonitor struct {
			Labels map[string]string `json:"labels"`
		} `json:"serviceMonitor"`
	} `json:"metrics"`
}

func TestProductionValues(t *testing.T) {
	raw, err := os.ReadFile(production)
	if err != nil {
		t.Fatal(err)
	}
	var want prodValues
	if err := yaml.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	objs := render(t, "-f", production)
	checkHardened(t, objs)
	dep := must[appsv1.Deployment](t, objs)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 3 || want.ReplicaCount != 3 {
		t.Errorf("replicas %v, want 3", dep.Spec.Replicas)
	}
	if dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || dep.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy %+v: want RollingUpdate with maxUnavailable 0", dep.Spec.Strategy)
	}
	c := dep.Spec.Template.Spec.Containers[0]
	db := env(c, "LATCHKEY_DATABASE_URL")
	if db == nil || db.Value != "" || db.ValueFrom == nil || db.ValueFrom.SecretKeyRef == nil ||
		db.ValueFrom.SecretKeyRef.Name != want.Database.ExistingSecret || db.ValueFrom.SecretKeyRef.Key != want.Database.SecretKey {
		t.Errorf("LATCHKEY_DATABASE_URL %+v: want it from Secret %s key %s", db, want.Database.ExistingSecret, want.Database.SecretKey)
	}
	if rs := env(c, "LATCHKEY_RATE_LIMIT_STORE"); rs == nil || rs.ValueFrom == nil || rs.ValueFrom.SecretKeyRef == nil {
		t.Errorf("LATCHKEY_RATE_LIMIT_STORE %+v: want it from a Secret", rs)
	}
	if tp := env(c, "LATCHKEY_TRUSTED_PROXIES"); tp == nil || tp.Value != strings.Join(want.TrustedProxies, ",") {
		t.Errorf("LATCHKEY_TRUSTED_PROXIES %+v, want %q", tp, strings.Join(want.TrustedProxies, ","))
	}
	if !c.Resources.Requests.Cpu().Equal(*want.Resources.Requests.Cpu()) || !c.Resources.Limits.Memory().Equal(*want.Resources.Limits.Memory()) {
		t.Errorf("resources %+v, want %+v", c.Resources, want.Resources)
	}
	if n := Count(objs, "PersistentVolumeClaim"); n != 0 {
		t.Errorf("%d PersistentVolumeClaims on PostgreSQL, want none", n)
	}
	// Nothing in the rendering is a secret: the Secret is referenced, not made.
	if n := Count(objs, "Secret"); n != 0 {
		t.Errorf("the chart rendered %d Secrets", n)
	}

	svc := must[corev1.Service](t, objs)
	sm := must[monitoringv1.ServiceMonitor](t, objs)
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || smSel.Empty() || !smSel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("the ServiceMonitor's selector %v does not match the Service's labels %v (%v)", sm.Spec.Selector, svc.Labels, err)
	}
	if !slices.Equal(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("the ServiceMonitor looks in namespaces %v, want [%s]", sm.Spec.NamespaceSelector.MatchNames, namespace)
	}
	for k, v := range want.Metrics.ServiceMonitor.Labels {
		if sm.Labels[k] != v {
			t.Errorf("ServiceMonitor label %s=%q, want %q", k, sm.Labels[k], v)
		}
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("%d ServiceMonitor endpoints, want 1", len(sm.Spec.Endpoints))
	}
	ep := sm.Spec.Endpoints[0]
	var svcPort *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if p.Name == ep.Port {
			svcPort = &svc.Spec.Ports[i]
		}
	}
	if svcPort == nil || ep.Path != "/metrics" || containerPort(c, svcPort.TargetPort.String()) != want.Metrics.Port {
		t.Errorf("the ServiceMonitor scrapes %s on port %q: want /metrics on the Service port that leads to container port %d", ep.Path, ep.Port, want.Metrics.Port)
	}
	if ma := env(c, "LATCHKEY_METRICS_ADDR"); ma == nil || !strings.HasSuffix(ma.Value, ":"+itoa(want.Metrics.Port)) {
		t.Errorf("LATCHKEY_METRICS_ADDR %+v: the server must serve /metrics on port %d", ma, want.Metrics.Port)
	}

	np := must[networkingv1.NetworkPolicy](t, objs)
	npSel, _ := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if npSel.Empty() || !npSel.Matches(labels.Set(dep.Spec.Template.Labels)) {
		t.Errorf("the NetworkPolicy selects %v, not the pods", np.Spec.PodSelector)
	}
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil || containerPort(c, p.Port.String()) == 0 {
				t.Errorf("the NetworkPolicy opens port %v, which the container does not open", p.Port)
			}
		}
		if len(r.From) == 0 {
			t.Errorf("the production NetworkPolicy opens port %v to everyone", r.Ports)
		}
	}
	t.Logf("production values: %d manifests, all decoded strictly: %s", len(objs), kindsOf(objs))
}

// TestForwardAuth: forwardAuth.enabled opens the forward-auth listener on
// its port, declares the port on the container and the Service, and lets
// the NetworkPolicy admit forwardAuthFrom to it and nothing else.
func TestForwardAuth(t *testing.T) {
	objs := render(t, "--set", "forwardAuth.enabled=true", "--set", "forwardAuth.port=8181", "--set", "networkPolicy.enabled=true",
		"--set", "networkPolicy.forwardAuthFrom[0].namespaceSelector.matchLabels.gateway=yes")
	checkHardened(t, objs)
	c := must[appsv1.Deployment](t, objs).Spec.Template.Spec.Containers[0]
	if e := env(c, "LATCHKEY_AUTHORIZE_ADDR"); e == nil || e.Value != "0.0.0.0:8181" {
		t.Errorf("LATCHKEY_AUTHORIZE_ADDR %+v, want 0.0.0.0:8181", e)
	}
	if n := containerPort(c, "forward-auth"); n != 8181 {
		t.Errorf("container port forward-auth %d, want 8181", n)
	}
	svc := must[corev1.Service](t, objs)
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "forward-auth" })
	if i < 0 || svc.Spec.Ports[i].Port != 8181 || containerPort(c, svc.Spec.Ports[i].TargetPort.String()) != 8181 {
		t.Errorf("Service ports %+v: want forward-auth 8181 leading to the container's port 8181", svc.Spec.Ports)
	}
	np := must[networkingv1.NetworkPolicy](t, objs)
	found := false
	for _, r := range np.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port != nil && containerPort(c, p.Port.String()) == 8181 {
				found = true
				if len(r.From) != 1 || r.From[0].NamespaceSelector == nil || r.From[0].NamespaceSelector.MatchLabels["gateway"] != "yes" {
					t.Errorf("the forward-auth port is open to %+v, want forwardAuthFrom's namespace only", r.From)
				}
			}
		}
	}
	if !found {
		t.Error("the NetworkPolicy does not admit anyone to the forward-auth port")
	}
}

// TestServiceMonitorOnlyWhenEnabled: the ServiceMonitor's CRD may not be
// installed, so it is rendered only on request.
func TestServiceMonitorOnlyWhenEnabled(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"default", nil, 0},
		{"enabled", []string{"--set", "metrics.serviceMonitor.enabled=true"}, 1},
		{"production, turned off", []string{"-f", production, "--set", "metrics.serviceMonitor.enabled=false"}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := Count(render(t, tc.args...), "ServiceMonitor"); n != tc.want {
				t.Errorf("%d ServiceMonitors, want %d", n, tc.want)
			}
		})
	}
}

// TestBadValuesRefused: settings that cannot work fail helm template
// (and so helm install) with a message that says what is wrong, before
// anything reaches a cluster. values.schema.json's refusals fail helm lint
// too; the template's own checks (fail) cannot, as helm lint turns fail
// into an informational message.
func TestBadValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		schema bool // refused by values.schema.json, so by helm lint too
	}{
		{"SQLite with replicas", []string{"--set", "replicaCount=3"}, "SQLite is one process on one file", false},
		{"PostgreSQL without a Secret", []string{"--set", "database.type=postgres"}, "database.existingSecret is empty", false},
		{"ServiceMonitor without metrics", []string{"--set", "metrics.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"}, "needs metrics.enabled", false},
		{"metrics on the API's port", []string{"--set", "metrics.port=8080"}, "give /metrics a port of its own", false},
		{"forward auth on the API's port", []string{"--set", "forwardAuth.enabled=true", "--set", "forwardAuth.port=8080"}, "give forward auth a port of its own", false},
		{"forward auth on the metrics' port", []string{"--set", "forwardAuth.enabled=true", "--set", "forwardAuth.port=9090"}, "give forward auth a port of its own", false},
		{"forward auth's port not a number", []string{"--set", "forwardAuth.port=http"}, "forwardAuth/port", true},
		{"unknown key (file)", []string{"-f", "testdata/unknown-key.yaml"}, "additional properties 'replicas' not allowed", true},
		{"wrong type (file)", []string{"-f", "testdata/wrong-type.yaml"}, "replicaCount", true},
		{"unknown database type (file)", []string{"-f", "testdata/bad-database.yaml"}, "database/type", true},
		{"not an address in trustedProxies (file)", []string{"-f", "testdata/bad-proxies.yaml"}, "trustedProxies/0", true},
		{"capabilities cannot be re-added (file)", []string{"-f", "testdata/security-override.yaml"}, "additional properties 'securityContext' not allowed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := [][]string{append([]string{"template", release, chart, "--namespace", namespace}, tc.args...)}
			if tc.schema {
				cmds = append(cmds, append([]string{"lint", "--strict", chart, "--namespace", namespace}, tc.args...))
			}
			for _, cmd := range cmds {
				out, err := helm(t, cmd...)
				if err == nil {
					t.Fatalf("helm %s succeeded:\n%s", cmd[0], out)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("helm %s failed without saying %q:\n%v", cmd[0], tc.want, err)
				}
			}
		})
	}
}

// TestChartReadme: the chart's README says what was tested and that no
// cluster was used, and its values table names every top-level value.
func TestChartReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(chart, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "No Kubernetes cluster was available") {
		t.Error("the chart's README does not say that no cluster was available")
	}
	values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^([a-zA-Z]+):`).FindAllSubmatch(values, -1) {
		if !bytes.Contains(readme, []byte("`"+string(m[1])+"`")) {
			t.Errorf("the chart's README does not document the value %s", m[1])
		}
	}
}
