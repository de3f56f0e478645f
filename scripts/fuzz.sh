#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for a bounded time on its committed seed corpus
# (fuzz/corpus/TARGET), failing on the first crash: a panic, a unit running longer than
# 10 s (a hang), an allocation over 512 MiB or a resident size over 2 GiB. Installs
# cargo-fuzz (pinned) and a nightly toolchain if missing.
#
#   scripts/fuzz.sh                 every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh template        one target
#   FUZZ_SECONDS=600 scripts/fuzz.sh template
#
# New inputs the fuzzer finds go to a scratch folder, not into the committed corpus; a crash
# is written to fuzz/artifacts/TARGET/ and replays with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
TARGETS=(template property rewrite decode keys manifest)
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
fi

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# Each run is one process fuzzing in one thread (libFuzzer's default; `-jobs=1` would only move
# its output to a log file). One build for every target (the first takes minutes: kuvert-core with AddressSanitizer).
(cd fuzz && cargo +nightly fuzz build)

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${TARGETS[@]}"; do
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=dict/$target.dict")
    fi
    mkdir -p "$scratch/$target"
    echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
    (cd fuzz && cargo +nightly fuzz run "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" \
        -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -max_len=65536 \
        -print_final_stats=1 "${dict[@]}")
done
