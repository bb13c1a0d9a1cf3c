package check

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Object is one rendered manifest, decoded into its API type.
type Object struct {
	Source string // the template it came from ("# Source: ..." line)
	Kind   string
	Name   string
	Value  any // *appsv1.Deployment, *corev1.Service, ...
}

// kinds maps "apiVersion kind" to a new value of the API type it decodes
// into. A kind missing here is an error: the chart may render only what
// this package knows how to check.
var kinds = map[string]func() any{
	"v1 ServiceAccount":                       func() any { return new(corev1.ServiceAccount) },
	"v1 Service":                              func() any { return new(corev1.Service) },
	"v1 PersistentVolumeClaim":                func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1 Deployment":                      func() any { return new(appsv1.Deployment) },
	"policy/v1 PodDisruptionBudget":           func() any { return new(policyv1.PodDisruptionBudget) },
	"networking.k8s.io/v1 NetworkPolicy":      func() any { return new(networkingv1.NetworkPolicy) },
	"monitoring.coreos.com/v1 ServiceMonitor": func() any { return new(monitoringv1.ServiceMonitor) },
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// Decode splits helm template's output into documents and decodes each
// one strictly, the way the API server reads a request body: YAML to JSON
// refusing duplicate keys, then JSON into the typed object, case-sensitive,
// refusing unknown and duplicate fields. Every error is returned, joined.
func Decode(out []byte) ([]Object, error) {
	var objs []Object
	var errs []error
	seen := map[string]bool{}
	for _, doc := range docSeparator.Split(string(out), -1) {
		source := ""
		body := false
		for _, line := range strings.Split(doc, "\n") {
			t := strings.TrimSpace(line)
			if s, ok := strings.CutPrefix(t, "# Source: "); ok && source == "" {
				source = s
			} else if t != "" && !strings.HasPrefix(t, "#") {
				body = true
			}
		}
		if !body {
			continue
		}
		o, err := decodeOne([]byte(doc))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", source, err))
			continue
		}
		o.Source = source
		key := o.Kind + "/" + o.Name
		if seen[key] {
			errs = append(errs, fmt.Errorf("%s: %s rendered twice", source, key))
		}
		seen[key] = true
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

func decodeOne(doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return Object{}, fmt.Errorf("YAML: %w", err)
	}
	var tm metav1.TypeMeta
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return Object{}, fmt.Errorf("apiVersion and kind: %w", err)
	}
	newValue, ok := kinds[tm.APIVersion+" "+tm.Kind]
	if !ok {
		return Object{}, fmt.Errorf("unknown kind %q of apiVersion %q", tm.Kind, tm.APIVersion)
	}
	v := newValue()
	strict, err := kjson.UnmarshalStrict(js, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if len(strict) > 0 {
		return Object{}, fmt.Errorf("%s: %w", tm.Kind, errors.Join(strict...))
	}
	meta := v.(metav1.Object)
	var problems []string
	if len(validation.IsDNS1123Subdomain(meta.GetName())) > 0 || len(meta.GetName()) > 63 {
		problems = append(problems, fmt.Sprintf("name %q is not a DNS label", meta.GetName()))
	}
	for k, val := range meta.GetLabels() {
		problems = append(problems, validation.IsQualifiedName(k)...)
		problems = append(problems, validation.IsValidLabelValue(val)...)
	}
	if len(problems) > 0 {
		return Object{}, fmt.Errorf("%s %s: %s", tm.Kind, meta.GetName(), strings.Join(problems, "; "))
	}
	return Object{Kind: tm.Kind, Name: meta.GetName(), Value: v}, nil
}

// One returns the single object of the kind, or an error when there are
// none or several.
func One[T any](objs []Object) (*T, error) {
	var found []*T
	for _, o := range objs {
		if v, ok := o.Value.(*T); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d objects of type %T rendered, want 1", len(found), *new(T))
	}
	return found[0], nil
}

// Count returns how many objects of the kind were rendered.
func Count(objs []Object, kind string) int {
	n := 0
	for _, o := range objs {
		if o.Kind == kind {
			n++
		}
	}
	return n
}
