// Package helmtest holds the deployment tests: it lints and renders the Helm
// chart in helm/mesh-gateway with helm itself (built from its Go module), decodes
// every rendered manifest strictly into the Kubernetes API types, and checks the
// Dockerfile's invariants. It has no non-test code beyond this comment.
package helmtest
