# syntax=docker/dockerfile:1.7
# The two images of ia-agents from one build stage (shared dependency cache):
#   docker build --target operator -t ghcr.io/ia-agents/trading-operator:0.1.0 .
#   docker build --target agent    -t ghcr.io/ia-agents/trading-agent:0.1.0 .
# (`make images` does both.) The final images are distroless: glibc, CA certificates, a non-root
# user (65532), no shell and no package manager.

ARG RUST_VERSION=1.95
ARG RUNTIME=gcr.io/distroless/cc-debian12:nonroot

FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# the cache mounts keep the registry and the build directory between builds
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p ia-operator -p ia-agent --bin trading-operator --bin trading-agent \
 && mkdir -p /out \
 && cp target/release/trading-operator target/release/trading-agent /out/

FROM ${RUNTIME} AS operator
LABEL org.opencontainers.image.title="trading-operator" \
      org.opencontainers.image.description="ia-agents Kubernetes operator" \
      org.opencontainers.image.source="https://github.com/ia-agents/ia-agents" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/trading-operator /usr/local/bin/trading-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trading-operator"]
CMD ["run"]

FROM ${RUNTIME} AS agent
LABEL org.opencontainers.image.title="trading-agent" \
      org.opencontainers.image.description="ia-agents trading assistant, coordinator and local backtest" \
      org.opencontainers.image.source="https://github.com/ia-agents/ia-agents" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/trading-agent /usr/local/bin/trading-agent
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/trading-agent"]
CMD ["--help"]
