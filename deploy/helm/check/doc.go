// Package check tests the Helm chart in deploy/helm/latchkey without a
// cluster: helm lint and helm template on the default values and on
// deploy/helm/values-production.yaml, every rendered manifest decoded
// strictly into its Kubernetes API type (an unknown field or kind fails),
// the chart's properties asserted on those types, and the rendered
// container's settings run with the real latchkey binary so that the
// probes and the metrics endpoint are shown to answer.
//
// It is a module of its own so that the Kubernetes API modules stay out of
// latchkey's go.mod.
package check
