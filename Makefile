# One developer interface; .ci/run uses the same targets.
CARGO ?= cargo

.PHONY: test test-deps lint deny fmt generate bench fuzz

## Installs the servers the tests need (OpenBao, PostgreSQL, kubectl, promtool) and builds the
## real control plane once (scripts/control-plane.sh), then runs every test: the end-to-end
## scenarios run against devcluster and against kube-apiserver + etcd + kube-controller-manager.
test: test-deps
	$(CARGO) test --workspace

test-deps:
	./scripts/install-test-deps.sh

## Formatting and clippy with warnings as errors; the operator also as the image builds it
## (without the default `dev` feature), so that build cannot rot unseen.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p kuvert-operator --all-targets --no-default-features -- -D warnings

## The dependency policy of deny.toml: permissive licences only, crates.io only, no wildcard
## versions (cargo-deny is built once into ~/.cache/kuvert/tools, about 4 CPU-minutes).
## Advisories need RustSec's database from GitHub, which CI cannot reach: see deny.toml.
DENY_VERSION := 0.20.2
DENY := $(HOME)/.cache/kuvert/tools/bin/cargo-deny
deny:
	@test -x $(DENY) && $(DENY) --version | grep -q ' $(DENY_VERSION)$$' || \
		$(CARGO) install cargo-deny --version $(DENY_VERSION) --locked --root $(HOME)/.cache/kuvert/tools
	$(DENY) deny --log-level error check --hide-inclusion-graph licenses bans sources

fmt:
	$(CARGO) fmt --all

## Runs each cargo-fuzz target of fuzz/ (templates, property paths, rewrite, decoding, key
## conversion, the manifest reader) for FUZZ_SECONDS (default 30) on its seed corpus and fails
## on any crash, hang or runaway allocation; installs cargo-fuzz and nightly if missing.
fuzz:
	./scripts/fuzz.sh

## Regenerates crds/ and the chart's CRDs from the Rust types (a test fails when they drift).
generate:
	$(CARGO) run --quiet -p kuvert-operator -- crds --out-dir crds --out-dir charts/kuvert/files/crds

## Prints devcluster's create/get/watch throughput (the API server's own cost in the figures),
## then runs kuvert-bench: OpenBao, devcluster and the release `kuvert run` under N
## ExternalSecrets (bench/README.md). BENCH_ARGS passes flags, e.g. BENCH_ARGS="--n 2000".
bench:
	$(CARGO) bench -p kuvert-devcluster
	$(CARGO) build --release -p kuvert-operator --bin kuvert
	$(CARGO) run --profile bench -p kuvert-bench -- $(BENCH_ARGS)
