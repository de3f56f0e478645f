#!/usr/bin/env bash
# The real Kubernetes control plane kuvert's tests run against, for tests and people:
#
#   scripts/control-plane.sh bin        builds what is missing, prints the folder holding
#                                       kube-apiserver, kube-controller-manager, etcd and helm
#   scripts/control-plane.sh up DIR     starts etcd, kube-apiserver and kube-controller-manager
#                                       on free loopback ports, writes DIR/admin.kubeconfig and
#                                       prints its path
#   scripts/control-plane.sh down DIR   stops what `up DIR` started and removes DIR
#
# The binaries are built from the Go module in tests/control-plane (versions pinned in its
# go.mod and go.sum) into a cache folder keyed by the Kubernetes version,
# ${KUVERT_CACHE:-~/.cache/kuvert}/control-plane/v1.37.2/; a second run builds nothing. `up`
# and `down` are kuvert-testkit's ControlPlane (the type the tests use), run as a command.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$root/tests/control-plane"
kube_version="$(grep -m1 -oE 'k8s.io/kubernetes v[0-9.]+' "$module/go.mod" | cut -d" " -f2)"
cache="${KUVERT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuvert}/control-plane/$kube_version"
binaries=(etcd kube-apiserver kube-controller-manager helm)

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# What the cached binaries were built from: a change to go.mod or go.sum rebuilds them.
stamp() { cat "$module/go.mod" "$module/go.sum" | sha256sum | cut -c1-16; }

built() {
  [ "$(cat "$cache/.stamp" 2>/dev/null)" = "$(stamp)" ] || return 1
  for b in "${binaries[@]}"; do [ -x "$cache/$b" ] || return 1; done
}

build() {
  mkdir -p "$cache"
  # One build at a time: tests running in parallel all ask for the binaries.
  exec 9>"$cache/.lock"
  flock 9
  if built; then return; fi
  command -v go >/dev/null || { echo "control-plane: go is not installed (Go 1.26 builds the control plane)" >&2; exit 1; }
  echo "control-plane: building etcd, kube-apiserver, kube-controller-manager and helm $kube_version into $cache (first time only)" >&2
  local start=$SECONDS
  # Version stamps, as Kubernetes' and Helm's own release builds set them: kubectl, kube-rs and
  # helm read the server's /version (a v0.0.0-master default breaks kubectl's version check
  # and charts' kubeVersion constraints).
  local helm_version kv=k8s.io/component-base/version hv=helm.sh/helm/v4/internal/version
  helm_version="$(grep -m1 -oE 'helm.sh/helm/v4 v[0-9.]+' "$module/go.mod" | cut -d" " -f2)"
  local minor="${kube_version#v*.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X $kv.gitVersion=$kube_version -X $kv.gitMajor=1 -X $kv.gitMinor=$minor"
  ldflags+=" -X $kv.gitTreeState=clean -X $hv.version=$helm_version -X $hv.gitTreeState=clean"
  (cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$cache/" \
    ./etcd \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    helm.sh/helm/v4/cmd/helm)
  stamp >"$cache/.stamp"
  echo "control-plane: built in $((SECONDS - start)) s" >&2
}

# kuvert-testkit's `control-plane` command, built once by cargo.
testkit() {
  (cd "$root" && cargo run --quiet -p kuvert-testkit --bin control-plane -- "$@")
}

case "${1:-}" in
  bin)
    [ $# -eq 1 ] || usage
    built || build
    echo "$cache"
    ;;
  up)
    [ $# -eq 2 ] || usage
    built || build
    KUVERT_CONTROL_PLANE_BIN="$cache" testkit up "$2"
    ;;
  down)
    [ $# -eq 2 ] || usage
    testkit down "$2"
    ;;
  *) usage ;;
esac
