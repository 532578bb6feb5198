package helmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// serviceMonitor mirrors the monitoring.coreos.com/v1 ServiceMonitor fields the
// chart uses (the Prometheus Operator Go types are not a dependency here);
// strict decoding means any field the chart adds must be added here knowingly.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Scheme        string `json:"scheme"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// rendered is one `helm template` output, decoded by kind and name.
type rendered struct {
	Deployments     map[string]*appsv1.Deployment
	Services        map[string]*corev1.Service
	ConfigMaps      map[string]*corev1.ConfigMap
	Secrets         map[string]*corev1.Secret
	ServiceAccounts map[string]*corev1.ServiceAccount
	HPAs            map[string]*autoscalingv2.HorizontalPodAutoscaler
	PDBs            map[string]*policyv1.PodDisruptionBudget
	NetworkPolicies map[string]*networkingv1.NetworkPolicy
	ServiceMonitors map[string]*serviceMonitor
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeStrict turns one YAML document into v, rejecting unknown fields and
// trailing data: a misspelt or misplaced field in a template fails the test
// instead of being silently dropped by the API server.
func decodeStrict(doc []byte, v any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("yaml.YAMLToJSONStrict: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("json.Decode %T: %w", v, err)
	}
	if dec.More() {
		return fmt.Errorf("json.Decode %T: trailing data", v)
	}
	return nil
}

// decodeManifests splits helm's multi-document output and decodes each object
// into its Kubernetes API type. Unknown kinds and duplicate names are errors.
func decodeManifests(out string) (*rendered, error) {
	r := &rendered{
		Deployments:     map[string]*appsv1.Deployment{},
		Services:        map[string]*corev1.Service{},
		ConfigMaps:      map[string]*corev1.ConfigMap{},
		Secrets:         map[string]*corev1.Secret{},
		ServiceAccounts: map[string]*corev1.ServiceAccount{},
		HPAs:            map[string]*autoscalingv2.HorizontalPodAutoscaler{},
		PDBs:            map[string]*policyv1.PodDisruptionBudget{},
		NetworkPolicies: map[string]*networkingv1.NetworkPolicy{},
		ServiceMonitors: map[string]*serviceMonitor{},
	}
	for i, doc := range docSeparator.Split(out, -1) {
		if isBlankYAML(doc) {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w\n%s", i, err, doc)
		}
		var err error
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			err = decodeInto(doc, r.Deployments, func(o *appsv1.Deployment) string { return o.Name })
		case "v1/Service":
			err = decodeInto(doc, r.Services, func(o *corev1.Service) string { return o.Name })
		case "v1/ConfigMap":
			err = decodeInto(doc, r.ConfigMaps, func(o *corev1.ConfigMap) string { return o.Name })
		case "v1/Secret":
			err = decodeInto(doc, r.Secrets, func(o *corev1.Secret) string { return o.Name })
		case "v1/ServiceAccount":
			err = decodeInto(doc, r.ServiceAccounts, func(o *corev1.ServiceAccount) string { return o.Name })
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = decodeInto(doc, r.HPAs, func(o *autoscalingv2.HorizontalPodAutoscaler) string { return o.Name })
		case "policy/v1/PodDisruptionBudget":
			err = decodeInto(doc, r.PDBs, func(o *policyv1.PodDisruptionBudget) string { return o.Name })
		case "networking.k8s.io/v1/NetworkPolicy":
			err = decodeInto(doc, r.NetworkPolicies, func(o *networkingv1.NetworkPolicy) string { return o.Name })
		case "monitoring.coreos.com/v1/ServiceMonitor":
			err = decodeInto(doc, r.ServiceMonitors, func(o *serviceMonitor) string { return o.Name })
		default:
			return nil, fmt.Errorf("document %d: unexpected object %q %q", i, tm.APIVersion, tm.Kind)
		}
		if err != nil {
			return nil, fmt.Errorf("document %d (%s): %w\n%s", i, tm.Kind, err, doc)
		}
	}
	return r, nil
}

// decodeInto strictly decodes doc into a new T and files it under its name.
func decodeInto[T any](doc string, m map[string]*T, nameOf func(*T) string) error {
	o := new(T)
	if err := decodeStrict([]byte(doc), o); err != nil {
		return err
	}
	name := nameOf(o)
	if name == "" {
		return fmt.Errorf("%T without metadata.name", o)
	}
	if _, dup := m[name]; dup {
		return fmt.Errorf("duplicate %T %q", o, name)
	}
	m[name] = o
	return nil
}

// isBlankYAML reports whether a document holds only comments and whitespace.
func isBlankYAML(doc string) bool {
	for _, line := range strings.Split(doc, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}
