{{/* Chart name, truncated to the 63-character DNS label limit. */}}
{{- define "mesh-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; room is left for the "-mesh-tls" style suffixes. */}}
{{- define "mesh-gateway.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "mesh-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mesh-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mesh-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "mesh-gateway.labels" -}}
helm.sh/chart: {{ include "mesh-gateway.chart" . }}
{{ include "mesh-gateway.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mesh-gateway.imageTag" . | trunc 63 | quote }}
app.kubernetes.io/component: gateway
app.kubernetes.io/part-of: mesh-gateway
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "mesh-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mesh-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Image tag: the chart appVersion unless overridden. A mutable "latest" tag is refused. */}}
{{- define "mesh-gateway.imageTag" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag | toString }}
{{- if eq (lower $tag) "latest" }}
{{- fail "image.tag must not be \"latest\": pin a version (or image.digest) so rollouts are reproducible" }}
{{- end }}
{{- $tag }}
{{- end }}

{{- define "mesh-gateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (include "mesh-gateway.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Names of the chart-managed objects. */}}
{{- define "mesh-gateway.secretName" -}}
{{- include "mesh-gateway.fullname" . }}
{{- end }}
{{- define "mesh-gateway.envSecretName" -}}
{{- printf "%s-env" (include "mesh-gateway.fullname" .) }}
{{- end }}
{{- define "mesh-gateway.envConfigMapName" -}}
{{- printf "%s-env" (include "mesh-gateway.fullname" .) }}
{{- end }}
{{- define "mesh-gateway.configMapName" -}}
{{- printf "%s-config" (include "mesh-gateway.fullname" .) }}
{{- end }}
{{- define "mesh-gateway.meshTLSSecretName" -}}
{{- default (printf "%s-mesh-tls" (include "mesh-gateway.fullname" .)) .Values.mesh.tls.existingSecret }}
{{- end }}

{{/* Mount points (the env ConfigMap points the gateway at them). */}}
{{- define "mesh-gateway.configDir" -}}/etc/mesh-gateway/config{{- end }}
{{- define "mesh-gateway.meshTLSDir" -}}/etc/mesh-gateway/mesh-tls{{- end }}

{{/*
Redis source: exactly one of url | existingSecret | sentinel | cluster.
Returns the mode name; fails with a readable message otherwise, because with no
REDIS_URL the gateway would start its in-memory demo store.
*/}}
{{- define "mesh-gateway.redisMode" -}}
{{- $r := .Values.redis }}
{{- $modes := list }}
{{- if $r.url }}{{ $modes = append $modes "url" }}{{ end }}
{{- if $r.existingSecret }}{{ $modes = append $modes "existingSecret" }}{{ end }}
{{- if or $r.sentinel.masterName $r.sentinel.addrs }}{{ $modes = append $modes "sentinel" }}{{ end }}
{{- if $r.cluster.addrs }}{{ $modes = append $modes "cluster" }}{{ end }}
{{- if eq (len $modes) 0 }}
{{- fail "redis is required: set redis.url, redis.existingSecret, redis.sentinel.masterName+addrs or redis.cluster.addrs (without REDIS_URL the gateway would run its non-durable demo store)" }}
{{- end }}
{{- if gt (len $modes) 1 }}
{{- fail (printf "set only one Redis source, got: %s" (join ", " $modes)) }}
{{- end }}
{{- $mode := first $modes }}
{{- if eq $mode "sentinel" }}
{{- if not $r.sentinel.masterName }}{{ fail "redis.sentinel.masterName is required with redis.sentinel.addrs" }}{{ end }}
{{- if not $r.sentinel.addrs }}{{ fail "redis.sentinel.addrs needs at least one Sentinel host:port" }}{{ end }}
{{- end }}
{{- if and (eq $mode "cluster") (lt (len $r.cluster.addrs) 2) }}
{{- fail "redis.cluster.addrs needs at least 2 seed nodes (a single address is indistinguishable from a standalone server)" }}
{{- end }}
{{- if and (or (eq $mode "url") (eq $mode "existingSecret")) (or $r.password $r.passwordSecret.name) }}
{{- fail "redis.password/passwordSecret apply to sentinel/cluster URLs only: put the password inside redis.url or the existing secret's URL" }}
{{- end }}
{{- if and $r.password $r.passwordSecret.name }}
{{- fail "set redis.password or redis.passwordSecret.name, not both" }}
{{- end }}
{{- $mode }}
{{- end }}

{{- define "mesh-gateway.redisHasPassword" -}}
{{- if or .Values.redis.password .Values.redis.passwordSecret.name }}true{{ end }}
{{- end }}

{{/*
REDIS_URL for Sentinel / Cluster in the go-redis URL form
(redis.ParseFailoverURL / redis.ParseClusterURL). The password is never
rendered: Kubernetes substitutes $(REDIS_URL_PASSWORD) from a Secret at start-up.
  sentinel: redis://[:pw@]s1:26379/0?master_name=m&password=pw&addr=s2:26379
  cluster:  redis://[:pw@]n1:6379?addr=n2:6379&addr=n3:6379
*/}}
{{- define "mesh-gateway.redisGeneratedURL" -}}
{{- $r := .Values.redis }}
{{- $mode := include "mesh-gateway.redisMode" . }}
{{- $scheme := ternary "rediss" "redis" (eq (toString $r.tls) "true") }}
{{- $pw := include "mesh-gateway.redisHasPassword" . }}
{{- if eq $mode "sentinel" }}
{{- $addrs := $r.sentinel.addrs }}
{{- $userinfo := "" }}
{{- if and $pw $r.sentinel.authSentinels }}{{ $userinfo = ":$(REDIS_URL_PASSWORD)@" }}{{ end }}
{{- $q := list (printf "master_name=%s" (urlquery $r.sentinel.masterName)) }}
{{- if $pw }}{{ $q = append $q "password=$(REDIS_URL_PASSWORD)" }}{{ end }}
{{- range rest $addrs }}{{ $q = append $q (printf "addr=%s" .) }}{{ end }}
{{- printf "%s://%s%s/%d?%s" $scheme $userinfo (first $addrs) (int $r.db) (join "&" $q) }}
{{- else if eq $mode "cluster" }}
{{- $addrs := $r.cluster.addrs }}
{{- $userinfo := ternary ":$(REDIS_URL_PASSWORD)@" "" (eq $pw "true") }}
{{- $q := list }}
{{- range rest $addrs }}{{ $q = append $q (printf "addr=%s" .) }}{{ end }}
{{- printf "%s://%s%s?%s" $scheme $userinfo (first $addrs) (join "&" $q) }}
{{- end }}
{{- end }}

{{/* Container env entries for REDIS_URL (and the password it references). */}}
{{- define "mesh-gateway.redisEnv" -}}
{{- $r := .Values.redis }}
{{- $mode := include "mesh-gateway.redisMode" . }}
{{- if eq $mode "existingSecret" }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ $r.existingSecret }}
      key: {{ $r.existingSecretKey }}
{{- else if eq $mode "url" }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "mesh-gateway.secretName" . }}
      key: redis-url
{{- else }}
{{- if $r.passwordSecret.name }}
- name: REDIS_URL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $r.passwordSecret.name }}
      key: {{ $r.passwordSecret.key }}
{{- else if $r.password }}
- name: REDIS_URL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mesh-gateway.secretName" . }}
      key: redis-url-password
{{- end }}
- name: REDIS_URL
  value: {{ include "mesh-gateway.redisGeneratedURL" . | quote }}
{{- end }}
{{- end }}

{{/* Percent-encode a password for use in URL userinfo or query (space as %20, not "+"). */}}
{{- define "mesh-gateway.urlEncodePassword" -}}
{{- urlquery . | replace "+" "%20" }}
{{- end }}

{{/*
MESH credentials: mesh.existingSecret, or the chart Secret when values are given.
Without a registry file (gatewayConfig) the single-mailbox settings are mandatory.
*/}}
{{- define "mesh-gateway.meshValidate" -}}
{{- $m := .Values.mesh }}
{{- $_ := required "mesh.url is required (e.g. https://msg.intspineservices.nhs.uk); without MESH_URL the gateway would run its embedded demo" $m.url }}
{{- if and (not $m.existingSecret) (not .Values.gatewayConfig) }}
{{- if not (and $m.mailboxPassword $m.sharedKey) }}
{{- fail "set mesh.existingSecret, or mesh.mailboxPassword and mesh.sharedKey (or describe mailboxes in gatewayConfig)" }}
{{- end }}
{{- end }}
{{- if and (not $m.mailboxId) (not .Values.gatewayConfig) }}
{{- fail "mesh.mailboxId is required unless gatewayConfig lists the mailboxes" }}
{{- end }}
{{- if and $m.tls.enabled (not $m.tls.existingSecret) (not (and $m.tls.clientCert $m.tls.clientKey)) }}
{{- fail "mesh.tls.enabled needs mesh.tls.existingSecret or mesh.tls.clientCert + mesh.tls.clientKey (MESH requires mutual TLS)" }}
{{- end }}
{{- end }}

{{- define "mesh-gateway.meshHasCredentials" -}}
{{- if or .Values.mesh.existingSecret (and .Values.mesh.mailboxPassword .Values.mesh.sharedKey) }}true{{ end }}
{{- end }}

{{/* Whether the chart must create its credentials Secret. */}}
{{- define "mesh-gateway.needsSecret" -}}
{{- $m := .Values.mesh }}
{{- if or .Values.redis.url .Values.redis.password (and (not $m.existingSecret) (or $m.mailboxPassword $m.sharedKey)) }}true{{ end }}
{{- end }}

{{- define "mesh-gateway.meshTLSCAKey" -}}
{{- if .Values.mesh.tls.existingSecret }}{{ .Values.mesh.tls.keys.caCert }}{{ else if .Values.mesh.tls.caCert }}ca.crt{{ end }}
{{- end }}
