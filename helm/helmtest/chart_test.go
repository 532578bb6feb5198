package helmtest

import (
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "mesh-gateway" // relative to chartParentDir
	releaseName = "gw"
	namespace   = "mesh"
	fullname    = "gw-mesh-gateway"
	nonrootUID  = 65532
)

// valuesArgs turns testdata value file names into helm -f flags (paths relative to chartParentDir).
func valuesArgs(files []string, set []string) []string {
	var args []string
	for _, f := range files {
		args = append(args, "-f", filepath.Join("helmtest", "testdata", "values", f))
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return args
}

func lintAndTemplate(t *testing.T, files, set []string) *rendered {
	t.Helper()
	vals := valuesArgs(files, set)
	lintArgs := append([]string{"lint", "--strict", chartDir}, vals...)
	if res := runHelm(t, lintArgs...); res.err != nil {
		t.Fatal(res.failure(lintArgs))
	} else if !strings.Contains(res.stdout, "1 chart(s) linted, 0 chart(s) failed") {
		t.Fatalf("lint output without success line:\n%s", res.stdout)
	}
	tmplArgs := append([]string{"template", releaseName, chartDir, "--namespace", namespace}, vals...)
	res := runHelm(t, tmplArgs...)
	if res.err != nil {
		t.Fatal(res.failure(tmplArgs))
	}
	r, err := decodeManifests(res.stdout)
	if err != nil {
		t.Fatalf("decode rendered manifests: %v", err)
	}
	return r
}

// TestChartRenders lints and renders the chart once per feature values file, decodes
// every object strictly, checks the production invariants on all of them and the
// feature-specific output on each.
func TestChartRenders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		files []string
		set   []string
		check func(t *testing.T, r *rendered)
	}{
		{name: "inline credentials", files: []string{"inline.yaml"}, check: checkInline},
		{name: "existing secrets", files: []string{"existing-secrets.yaml"}, check: checkExistingSecrets},
		{name: "sentinel", files: []string{"sentinel.yaml"}, check: checkSentinel},
		{name: "cluster", files: []string{"cluster.yaml"}, check: checkCluster},
		{name: "servicemonitor on", files: []string{"inline.yaml", "servicemonitor.yaml"}, check: checkServiceMonitor},
		{name: "networkpolicy on", files: []string{"inline.yaml", "networkpolicy.yaml"}, check: checkNetworkPolicy},
		{name: "hpa off", files: []string{"inline.yaml", "hpa-off.yaml"}, check: checkHPAOff},
		{name: "registry config", files: []string{"inline.yaml", "registry.yaml"}, check: checkRegistry},
		{name: "image digest", files: []string{"inline.yaml"},
			set: []string{"image.digest=sha256:" + strings.Repeat("ab", 32)}, check: checkDigest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := lintAndTemplate(t, tc.files, tc.set)
			checkInvariants(t, r)
			tc.check(t, r)
		})
	}
}

// TestChartRefusesUnsafeValues: the defaults (no Redis, no MESH) would start the
// gateway's embedded demo, so rendering must fail; so must typos and mutable tags.
func TestChartRefusesUnsafeValues(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		files   []string
		set     []string
		wantErr string
	}{
		{name: "default values", wantErr: "mesh.url is required"},
		{name: "no redis", set: []string{"mesh.url=https://msg.intspineservices.nhs.uk", "mesh.mailboxId=X26ABC123",
			"mesh.existingSecret=m", "mesh.tls.existingSecret=t"}, wantErr: "redis is required"},
		{name: "no mesh url", set: []string{"redis.existingSecret=r"}, wantErr: "mesh.url is required"},
		{name: "two redis sources", files: []string{"inline.yaml"}, set: []string{"redis.cluster.addrs={a:6379,b:6379}"},
			wantErr: "set only one Redis source"},
		{name: "single cluster seed", files: []string{"existing-secrets.yaml"},
			set: []string{"redis.existingSecret=", "redis.cluster.addrs={a:6379}"}, wantErr: "at least 2 seed nodes"},
		{name: "sentinel without master", files: []string{"existing-secrets.yaml"},
			set: []string{"redis.existingSecret=", "redis.sentinel.addrs={s:26379}"}, wantErr: "masterName is required"},
		{name: "no mesh credentials", set: []string{"mesh.url=https://msg.intspineservices.nhs.uk", "mesh.mailboxId=X26ABC123",
			"mesh.tls.existingSecret=t", "redis.existingSecret=r"}, wantErr: "set mesh.existingSecret, or mesh.mailboxPassword and mesh.sharedKey"},
		{name: "no mtls", files: []string{"existing-secrets.yaml"}, set: []string{"mesh.tls.existingSecret="},
			wantErr: "mutual TLS"},
		{name: "latest tag", files: []string{"inline.yaml"}, set: []string{"image.tag=latest"}, wantErr: `image.tag must not be "latest"`},
		{name: "top-level typo", files: []string{"inline.yaml"}, set: []string{"replicaCont=3"}, wantErr: "additional properties 'replicaCont' not allowed"},
		{name: "nested typo", files: []string{"inline.yaml"}, set: []string{"redis.sentinal.masterName=x"}, wantErr: "additional properties 'sentinal' not allowed"},
		{name: "writable root fs", files: []string{"inline.yaml"}, set: []string{"securityContext.readOnlyRootFilesystem=false"},
			wantErr: "/securityContext/readOnlyRootFilesystem': value must be true"},
		{name: "short grace period", files: []string{"inline.yaml"}, set: []string{"terminationGracePeriodSeconds=30", "preStopSleepSeconds=5"},
			wantErr: "terminationGracePeriodSeconds must be at least"},
		{name: "reserved extra env", files: []string{"inline.yaml"}, set: []string{"gateway.extraEnv.REDIS_URL=redis://x"},
			wantErr: "gateway.extraEnv.REDIS_URL is set by the chart"},
		{name: "bad redis url scheme", set: []string{"redis.url=http://x"}, wantErr: "at '/redis/url'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"template", releaseName, chartDir, "--namespace", namespace}, valuesArgs(tc.files, tc.set)...)
			res := runHelm(t, args...)
			if res.err == nil {
				t.Fatalf("helm template succeeded, want error containing %q; output:\n%s", tc.wantErr, res.stdout)
			}
			if !strings.Contains(res.stderr, tc.wantErr) {
				t.Fatalf("stderr does not mention %q:\n%s", tc.wantErr, res.stderr)
			}
		})
	}
}

// TestChartLintsWithDefaults: the chart itself is well-formed with its own values
// (helm lint reports `required` failures only as info; template refuses them, above).
func TestChartLintsWithDefaults(t *testing.T) {
	t.Parallel()
	args := []string{"lint", "--strict", chartDir}
	res := runHelm(t, args...)
	if res.err != nil {
		t.Fatal(res.failure(args))
	}
	if !strings.Contains(res.stdout, "1 chart(s) linted, 0 chart(s) failed") {
		t.Fatalf("lint output:\n%s", res.stdout)
	}
}

// ---- invariants every successful render must satisfy ----

func checkInvariants(t *testing.T, r *rendered) {
	t.Helper()
	dep := only(t, r.Deployments, fullname)
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("want 1 container, got %d", len(pod.Containers))
	}
	c := pod.Containers[0]

	// Availability: two or more pods, rollouts never go below the desired count.
	if hpa, ok := r.HPAs[fullname]; ok {
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
			t.Errorf("HPA minReplicas = %v, want >= 2", hpa.Spec.MinReplicas)
		}
		if dep.Spec.Replicas != nil {
			t.Errorf("Deployment sets replicas while the HPA owns them")
		}
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != dep.Name || ref.APIVersion != "apps/v1" {
			t.Errorf("HPA targets %+v", ref)
		}
		if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Errorf("HPA has no CPU metric: %+v", hpa.Spec.Metrics)
		}
	} else if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want >= 2", dep.Spec.Replicas)
	}
	if s := dep.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
		s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.IntValue() != 0 {
		t.Errorf("strategy = %+v, want RollingUpdate maxUnavailable 0", s)
	}
	pdb := only(t, r.PDBs, fullname)
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
		t.Errorf("PDB minAvailable = %v, want 1", pdb.Spec.MinAvailable)
	}
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("PDB selector %v != Deployment selector %v", pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels)
	}
	for k, v := range dep.Spec.Selector.MatchLabels {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("pod template lacks selector label %s=%s", k, v)
		}
	}

	// Image: pinned, never latest.
	if strings.HasSuffix(c.Image, ":latest") || !regexp.MustCompile(`^[^@]+(:[\w][\w.-]*|@sha256:[a-f0-9]{64})$`).MatchString(c.Image) {
		t.Errorf("image %q: want an explicit tag or digest, not latest", c.Image)
	}

	// Probes on the API port.
	httpPort := containerPort(t, c, "http")
	if httpPort != 8080 || containerPort(t, c, "metrics") != 9090 {
		t.Errorf("container ports: %+v", c.Ports)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s probe missing", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path || p.probe.HTTPGet.Port != intstr.FromString("http") {
			t.Errorf("%s probe = %s on %v, want %s on http", p.name, p.probe.HTTPGet.Path, p.probe.HTTPGet.Port.String(), p.path)
		}
	}

	// Security context: non-root 65532, read-only root, no privilege escalation, no capabilities, seccomp.
	psc := pod.SecurityContext
	if psc == nil || !isTrue(psc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser != nonrootUID ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext = %+v", psc)
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("container securityContext missing")
	}
	if !isTrue(sc.RunAsNonRoot) || sc.RunAsUser == nil || *sc.RunAsUser != nonrootUID {
		t.Errorf("container does not run as non-root %d: %+v", nonrootUID, sc)
	}
	if !isTrue(sc.ReadOnlyRootFilesystem) {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("privileged container")
	}
	if sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("capabilities = %+v, want drop [ALL]", sc.Capabilities)
	}
	if sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("container seccompProfile = %+v", sc.SeccompProfile)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod automountServiceAccountToken is not false")
	}
	sa := only(t, r.ServiceAccounts, pod.ServiceAccountName)
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Error("ServiceAccount automountServiceAccountToken is not false")
	}
	if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds < 30 {
		t.Errorf("terminationGracePeriodSeconds = %v, want >= 30", pod.TerminationGracePeriodSeconds)
	}

	// Resources: requests and limits for CPU and memory.
	for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := rl[name]; !ok || q.IsZero() {
				t.Errorf("resources: %s missing in %v", name, rl)
			}
		}
	}
	if c.Resources.Limits.Memory().Cmp(*c.Resources.Requests.Memory()) < 0 {
		t.Error("memory limit below request")
	}

	// Writable /tmp on an emptyDir; every mount has a volume.
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	var tmpOK bool
	for _, m := range c.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("mount %s has no volume", m.Name)
			continue
		}
		if m.MountPath == "/tmp" && v.EmptyDir != nil {
			tmpOK = true
		}
	}
	if !tmpOK {
		t.Error("no emptyDir mounted at /tmp")
	}

	// Pods roll when chart-managed configuration changes.
	for _, k := range []string{"checksum/config", "checksum/secret"} {
		if !regexp.MustCompile(`^[a-f0-9]{64}$`).MatchString(dep.Spec.Template.Annotations[k]) {
			t.Errorf("pod annotation %s = %q, want a sha256", k, dep.Spec.Template.Annotations[k])
		}
	}

	// Config: never the embedded demo (MESH_URL and REDIS_URL both set).
	env := effectiveEnv(t, r, c)
	if !strings.HasPrefix(env["MESH_URL"], "https://") {
		t.Errorf("MESH_URL = %q", env["MESH_URL"])
	}
	if !regexp.MustCompile(`^((rediss?|unix)://|<secret:[^/>]+/[^>]+>$)`).MatchString(env["REDIS_URL"]) {
		t.Errorf("REDIS_URL = %q", env["REDIS_URL"])
	}
	if env["PORT"] != "8080" || env["ADMIN_PORT"] != "9090" || env["LOG_FORMAT"] != "json" {
		t.Errorf("PORT/ADMIN_PORT/LOG_FORMAT = %q/%q/%q", env["PORT"], env["ADMIN_PORT"], env["LOG_FORMAT"])
	}
	// Certificate and config paths must point into read-only mounts.
	for _, k := range []string{"MESH_CLIENT_CERT", "MESH_CLIENT_KEY", "MESH_CA_CERT", "GATEWAY_CONFIG"} {
		if p, ok := env[k]; ok {
			checkFileMounted(t, pod, c, k, p)
		}
	}
	if (env["MESH_CLIENT_CERT"] == "") != (env["MESH_CLIENT_KEY"] == "") {
		t.Error("MESH_CLIENT_CERT and MESH_CLIENT_KEY must be set together")
	}

	// Service: http + metrics onto the named container ports.
	svc := only(t, r.Services, fullname)
	want := map[string]int32{"http": 8080, "metrics": 9090}
	for _, p := range svc.Spec.Ports {
		if want[p.Name] != p.Port || p.TargetPort != intstr.FromString(p.Name) {
			t.Errorf("service port %+v", p)
		}
		delete(want, p.Name)
	}
	if len(want) != 0 {
		t.Errorf("service lacks ports %v", want)
	}
	if !reflect.DeepEqual(svc.Spec.Selector, dep.Spec.Selector.MatchLabels) {
		t.Errorf("service selector %v != deployment selector", svc.Spec.Selector)
	}
}

// effectiveEnv resolves the container environment the way the kubelet does:
// envFrom ConfigMaps/Secrets, then env with valueFrom and $(VAR) expansion.
// References to objects the chart renders must resolve; references to external
// Secrets yield "<secret:name/key>" so tests can see what was referenced.
func effectiveEnv(t *testing.T, r *rendered, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			cm, ok := r.ConfigMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("envFrom ConfigMap %q is not rendered", ef.ConfigMapRef.Name)
				continue
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case ef.SecretRef != nil:
			if s, ok := r.Secrets[ef.SecretRef.Name]; ok {
				for k, v := range s.Data {
					env[k] = string(v)
				}
			}
		}
	}
	varRef := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if s, ok := r.Secrets[ref.Name]; ok {
				v, ok := s.Data[ref.Key]
				if !ok {
					t.Errorf("env %s: chart Secret %s has no key %s", e.Name, ref.Name, ref.Key)
				}
				env[e.Name] = string(v)
			} else if strings.HasPrefix(ref.Name, fullname) {
				t.Errorf("env %s references chart Secret %s that is not rendered", e.Name, ref.Name)
			} else {
				env[e.Name] = "<secret:" + ref.Name + "/" + ref.Key + ">"
			}
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.Name == "GATEWAY_REPLICA_ID":
			if e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
				t.Errorf("env %s: want the pod name, got %s", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			env[e.Name] = "<pod name>"
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.Name == "GOMEMLIMIT":
			if e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("env %s: want the container's memory limit, got %s", e.Name, e.ValueFrom.ResourceFieldRef.Resource)
			}
			env[e.Name] = c.Resources.Limits.Memory().String()
		case e.ValueFrom != nil:
			t.Errorf("env %s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
		default:
			env[e.Name] = varRef.ReplaceAllStringFunc(e.Value, func(m string) string {
				name := varRef.FindStringSubmatch(m)[1]
				v, ok := env[name]
				if !ok {
					t.Errorf("env %s references $(%s) before it is defined", e.Name, name)
				}
				return v
			})
		}
	}
	return env
}

// checkFileMounted: path must be a file projected by a read-only volume mount.
func checkFileMounted(t *testing.T, pod corev1.PodSpec, c corev1.Container, envName, path string) {
	t.Helper()
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, path)
		if err != nil || strings.HasPrefix(rel, "..") || rel == "." {
			continue
		}
		if !m.ReadOnly {
			t.Errorf("%s=%s is on a writable mount", envName, path)
		}
		for _, v := range pod.Volumes {
			if v.Name != m.Name {
				continue
			}
			var items []corev1.KeyToPath
			switch {
			case v.Secret != nil:
				items = v.Secret.Items
			case v.ConfigMap != nil:
				items = v.ConfigMap.Items
			}
			if len(items) == 0 {
				return // whole object projected; key names are checked by the callers
			}
			for _, it := range items {
				if it.Path == rel {
					return
				}
			}
			t.Errorf("%s=%s: volume %s does not project %s", envName, path, v.Name, rel)
			return
		}
	}
	t.Errorf("%s=%s is not under any volume mount", envName, path)
}

// ---- per-feature checks ----

func checkInline(t *testing.T, r *rendered) {
	c := only(t, r.Deployments, fullname).Spec.Template.Spec.Containers[0]
	env := effectiveEnv(t, r, c)
	if got := env["REDIS_URL"]; got != "rediss://:s3cret@redis.gateway.svc:6380/2" {
		t.Errorf("REDIS_URL = %q", got)
	}
	if env["MESH_MAILBOX_PASSWORD"] != "test-mailbox-password" || env["MESH_SHARED_KEY"] != "test-shared-key" {
		t.Errorf("MESH credentials = %q / %q", env["MESH_MAILBOX_PASSWORD"], env["MESH_SHARED_KEY"])
	}
	tls := only(t, r.Secrets, fullname+"-mesh-tls")
	if tls.Type != corev1.SecretTypeTLS {
		t.Errorf("mesh TLS secret type %q", tls.Type)
	}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if !strings.Contains(string(tls.Data[k]), "-----BEGIN ") {
			t.Errorf("mesh TLS secret %s is not PEM", k)
		}
	}
	if env["MESH_CA_CERT"] != "/etc/mesh-gateway/mesh-tls/ca.crt" {
		t.Errorf("MESH_CA_CERT = %q", env["MESH_CA_CERT"])
	}
	if _, ok := env["GATEWAY_CONFIG"]; ok {
		t.Error("GATEWAY_CONFIG set without gatewayConfig")
	}
}

func checkExistingSecrets(t *testing.T, r *rendered) {
	if len(r.Secrets) != 0 {
		t.Errorf("chart renders Secrets %v although every credential is external", keys(r.Secrets))
	}
	dep := only(t, r.Deployments, fullname)
	env := effectiveEnv(t, r, dep.Spec.Template.Spec.Containers[0])
	for name, want := range map[string]string{
		"REDIS_URL":             "<secret:gateway-redis/url>",
		"MESH_MAILBOX_PASSWORD": "<secret:gateway-mesh-credentials/password>",
		"MESH_SHARED_KEY":       "<secret:gateway-mesh-credentials/shared-key>",
	} {
		if env[name] != want {
			t.Errorf("%s = %q, want %q", name, env[name], want)
		}
	}
	var vol *corev1.SecretVolumeSource
	for _, v := range dep.Spec.Template.Spec.Volumes {
		if v.Name == "mesh-tls" {
			vol = v.Secret
		}
	}
	if vol == nil || vol.SecretName != "gateway-mesh-client-tls" {
		t.Fatalf("mesh-tls volume = %+v", vol)
	}
	got := map[string]string{}
	for _, it := range vol.Items {
		got[it.Key] = it.Path
	}
	if want := map[string]string{"tls.crt": "tls.crt", "tls.key": "tls.key", "mesh-ca.pem": "ca.crt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("mesh-tls items = %v, want %v", got, want)
	}
	if vol.DefaultMode == nil || *vol.DefaultMode&0o007 != 0 {
		t.Errorf("mesh-tls defaultMode %v is world-readable", vol.DefaultMode)
	}
}

func checkSentinel(t *testing.T, r *rendered) {
	env := effectiveEnv(t, r, only(t, r.Deployments, fullname).Spec.Template.Spec.Containers[0])
	const want = "rediss://:p%40ss%20word%2F%2B%3A%25@redis-sentinel-0.redis.svc:26379/3" +
		"?master_name=mymaster&password=p%40ss%20word%2F%2B%3A%25" +
		"&addr=redis-sentinel-1.redis.svc:26379&addr=redis-sentinel-2.redis.svc:26379"
	if env["REDIS_URL"] != want {
		t.Errorf("REDIS_URL =\n %q\nwant\n %q", env["REDIS_URL"], want)
	}
	// The URL must mean what we think to go-redis itself.
	o, err := redis.ParseFailoverURL(env["REDIS_URL"])
	if err != nil {
		t.Fatalf("redis.ParseFailoverURL: %v", err)
	}
	wantAddrs := []string{"redis-sentinel-0.redis.svc:26379", "redis-sentinel-1.redis.svc:26379", "redis-sentinel-2.redis.svc:26379"}
	if o.MasterName != "mymaster" || o.DB != 3 || o.Password != "p@ss word/+:%" || o.SentinelPassword != "p@ss word/+:%" ||
		!reflect.DeepEqual(o.SentinelAddrs, wantAddrs) || o.TLSConfig == nil {
		t.Errorf("parsed failover options: master=%q db=%d pw=%q sentinelPw=%q addrs=%v tls=%v",
			o.MasterName, o.DB, o.Password, o.SentinelPassword, o.SentinelAddrs, o.TLSConfig != nil)
	}
	// The password is in the Secret only, never in the pod spec.
	dep := only(t, r.Deployments, fullname)
	for _, e := range dep.Spec.Template.Spec.Containers[0].Env {
		if strings.Contains(e.Value, "p%40ss") {
			t.Errorf("env %s carries the password in clear", e.Name)
		}
	}
}

func checkCluster(t *testing.T, r *rendered) {
	c := only(t, r.Deployments, fullname).Spec.Template.Spec.Containers[0]
	env := effectiveEnv(t, r, c)
	const want = "redis://:<secret:redis-cluster-auth/password>@redis-cluster-0.redis.svc:6379" +
		"?addr=redis-cluster-1.redis.svc:6379&addr=redis-cluster-2.redis.svc:6379"
	if env["REDIS_URL"] != want {
		t.Errorf("REDIS_URL =\n %q\nwant\n %q", env["REDIS_URL"], want)
	}
	// Parse with a stand-in URL-safe password, as the kubelet would substitute it.
	url := strings.ReplaceAll(env["REDIS_URL"], "<secret:redis-cluster-auth/password>", "clusterpw")
	o, err := redis.ParseClusterURL(url)
	if err != nil {
		t.Fatalf("redis.ParseClusterURL: %v", err)
	}
	wantAddrs := []string{"redis-cluster-0.redis.svc:6379", "redis-cluster-1.redis.svc:6379", "redis-cluster-2.redis.svc:6379"}
	if o.Password != "clusterpw" || !reflect.DeepEqual(o.Addrs, wantAddrs) || o.TLSConfig != nil {
		t.Errorf("parsed cluster options: pw=%q addrs=%v tls=%v", o.Password, o.Addrs, o.TLSConfig != nil)
	}
	if _, ok := env["MESH_CA_CERT"]; ok {
		t.Error("MESH_CA_CERT set although mesh.tls.keys.caCert is empty (system roots)")
	}
}

func checkServiceMonitor(t *testing.T, r *rendered) {
	sm := only(t, r.ServiceMonitors, fullname)
	svc := only(t, r.Services, fullname)
	if !reflect.DeepEqual(sm.Spec.Selector.MatchLabels, selectorSubset(svc.Labels, sm.Spec.Selector.MatchLabels)) ||
		len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("ServiceMonitor selector %v does not select the Service (labels %v)", sm.Spec.Selector.MatchLabels, svc.Labels)
	}
	if sm.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("ServiceMonitor labels %v lack the configured release label", sm.Labels)
	}
	if !reflect.DeepEqual(sm.Spec.NamespaceSelector.MatchNames, []string{namespace}) {
		t.Errorf("namespaceSelector %v", sm.Spec.NamespaceSelector.MatchNames)
	}
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("endpoints %+v", sm.Spec.Endpoints)
	}
	ep := sm.Spec.Endpoints[0]
	if ep.Port != "metrics" || ep.Path != "/metrics" || ep.Interval != "15s" || ep.ScrapeTimeout != "5s" {
		t.Errorf("endpoint %+v", ep)
	}
}

func checkNetworkPolicy(t *testing.T, r *rendered) {
	np := only(t, r.NetworkPolicies, fullname)
	dep := only(t, r.Deployments, fullname)
	if !reflect.DeepEqual(np.Spec.PodSelector.MatchLabels, dep.Spec.Selector.MatchLabels) {
		t.Errorf("podSelector %v", np.Spec.PodSelector.MatchLabels)
	}
	ports := map[string]bool{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.From) == 0 {
			t.Errorf("ingress rule open to every source although apiFrom/metricsFrom are set: %+v", rule)
		}
		for _, p := range rule.Ports {
			ports[p.Port.String()] = true
		}
	}
	if !ports["http"] || !ports["metrics"] || len(ports) != 2 {
		t.Errorf("ingress ports %v, want http and metrics", ports)
	}
	if len(np.Spec.PolicyTypes) != 2 || len(np.Spec.Egress) != 3 {
		t.Errorf("egress: policyTypes %v, %d rules (want DNS + 2 configured)", np.Spec.PolicyTypes, len(np.Spec.Egress))
	}
	var dns bool
	for _, p := range np.Spec.Egress[0].Ports {
		if p.Port != nil && p.Port.IntValue() == 53 {
			dns = true
		}
	}
	if !dns {
		t.Error("first egress rule does not allow DNS")
	}
}

func checkHPAOff(t *testing.T, r *rendered) {
	if len(r.HPAs) != 0 {
		t.Errorf("HPA rendered with autoscaling.enabled=false")
	}
	if rep := only(t, r.Deployments, fullname).Spec.Replicas; rep == nil || *rep != 3 {
		t.Errorf("replicas = %v, want 3", rep)
	}
}

func checkRegistry(t *testing.T, r *rendered) {
	dep := only(t, r.Deployments, fullname)
	c := dep.Spec.Template.Spec.Containers[0]
	env := effectiveEnv(t, r, c)
	if env["GATEWAY_CONFIG"] != "/etc/mesh-gateway/config/gateway.yaml" {
		t.Fatalf("GATEWAY_CONFIG = %q", env["GATEWAY_CONFIG"])
	}
	cm := only(t, r.ConfigMaps, fullname+"-config")
	var got map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["gateway.yaml"]), &got); err != nil {
		t.Fatalf("gateway.yaml: %v", err)
	}
	clients, _ := got["clients"].([]any)
	if len(clients) != 1 {
		t.Fatalf("clients = %v", got["clients"])
	}
	webhook := clients[0].(map[string]any)["webhook"].(map[string]any)
	if webhook["secret"] != "${TRUST_EPR_WEBHOOK_SECRET}" {
		t.Errorf("webhook secret reference = %v (must stay an unexpanded ${NAME})", webhook["secret"])
	}
	if env["TRUST_EPR_WEBHOOK_SECRET"] != "whsec_dGVzdA==" {
		t.Errorf("TRUST_EPR_WEBHOOK_SECRET = %q", env["TRUST_EPR_WEBHOOK_SECRET"])
	}
	var external bool
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil && ef.SecretRef.Name == "gateway-webhook-secrets" {
			external = true
		}
	}
	if !external {
		t.Error("gatewayExistingSecrets not loaded with envFrom")
	}
	for k, want := range map[string]string{
		"GATEWAY_AUDIENCE":            "https://gateway.example.nhs.uk/FHIR/STU3",
		"GATEWAY_PUBLIC_URL":          "https://gateway.example.nhs.uk",
		"MAX_BODY_BYTES":              "104857600",
		"RETENTION":                   "720h",
		"INBOX_POLL_INTERVAL":         "5m",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
		"OTEL_SERVICE_NAME":           fullname,
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
}

func checkDigest(t *testing.T, r *rendered) {
	img := only(t, r.Deployments, fullname).Spec.Template.Spec.Containers[0].Image
	if want := "ghcr.io/meshgateway/gateway@sha256:" + strings.Repeat("ab", 32); img != want {
		t.Errorf("image = %q, want %q", img, want)
	}
}

// ---- small helpers ----

func only[T any](t *testing.T, m map[string]*T, name string) *T {
	t.Helper()
	o, ok := m[name]
	if !ok {
		t.Fatalf("%T %q not rendered (have %v)", o, name, keys(m))
	}
	return o
}

func keys[T any](m map[string]T) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func containerPort(t *testing.T, c corev1.Container, name string) int32 {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	t.Errorf("container has no port named %q", name)
	return 0
}

func isTrue(b *bool) bool { return b != nil && *b }

// selectorSubset returns the entries of labels whose keys appear in sel.
func selectorSubset(labels, sel map[string]string) map[string]string {
	out := map[string]string{}
	for k := range sel {
		if v, ok := labels[k]; ok {
			out[k] = v
		}
	}
	return out
}
