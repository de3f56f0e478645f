# syntax=docker/dockerfile:1
# The kuvert image: `kuvert run` on a minimal, non-root base with CA certificates.
#
#   docker build -t ghcr.io/kuvert/kuvert:0.1.0 .
#
# The Helm chart (charts/kuvert) runs this image by default. operator/tests/image.rs checks
# what can be checked without a container engine: the binary copied is the one
# `cargo build --release` makes, its shared libraries are all in the runtime base, the user is
# the chart's non-root UID, and nothing in the runtime stage needs a shell.

# Build: the workspace's release profile (size-optimised, LTO; see Cargo.toml). Cargo.lock is
# honoured (--locked), so the image builds exactly the dependencies the tests ran with. Without
# the default `dev` feature: the image runs `kuvert run`, and `kuvert dev`'s embedded API
# server would only add code to it.
FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p kuvert-operator --bin kuvert --no-default-features \
    && install -D -m 0755 target/release/kuvert /out/kuvert

# Run: distroless "cc" holds glibc, libgcc and CA certificates (Vault and other stores are
# reached over TLS with the system roots) and no shell or package manager. Its `nonroot` user
# is UID/GID 65532, the UID the chart's Pod security context runs as.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/kuvert /usr/local/bin/kuvert
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/kuvert"]
CMD ["run"]
