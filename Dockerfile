# syntax=docker/dockerfile:1
#
# MESH Gateway container image.
#   docker build -t mesh-gateway:dev --build-arg VERSION=$(git describe --always) .
# Build stage: static, reproducible Go binary (no cgo, no local paths, stripped).
# Final stage: distroless static (CA certificates + tzdata, no shell), running as
# the unprivileged "nonroot" user (uid/gid 65532), matching the Helm chart's
# securityContext. Health is checked by Kubernetes probes (/healthz, /readyz),
# so the image has no HEALTHCHECK.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src

# Dependencies first so source edits do not invalidate the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# Set by BuildKit for `docker buildx build --platform ...`; default to linux/amd64.
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH:-amd64} \
    go build -trimpath -ldflags="-s -w" -o /out/gateway ./cmd/gateway

FROM gcr.io/distroless/static-debian12:nonroot

ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="mesh-gateway" \
      org.opencontainers.image.description="HTTP gateway that wraps clinical documents in ITK3 (GP Connect Send Document) messages and sends them through NHS MESH" \
      org.opencontainers.image.source="https://github.com/meshgateway/gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian12:nonroot"

# Root-owned and not writable by the runtime user.
COPY --from=build /out/gateway /gateway

USER nonroot:nonroot
# 8080: API (PORT), 9090: Prometheus /metrics (ADMIN_PORT).
EXPOSE 8080 9090
ENTRYPOINT ["/gateway"]
CMD ["serve"]
