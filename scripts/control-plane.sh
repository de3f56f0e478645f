#!/usr/bin/env bash
# The real Kubernetes control plane kuvert's tests run against, for tests and people:
#
#   scripts/control-plane.sh bin        builds what is missing, prints the folder holding
#                                       kube-apiserver, kube-controller-manager, etcd, helm
#                                       (Helm 4) and helm3 (Helm 3)
#   scripts/control-plane.sh up DIR     starts etcd, kube-apiserver and kube-controller-manager
#                                       on free loopback ports, writes DIR/admin.kubeconfig and
#                                       prints its path
#   scripts/control-plane.sh down DIR   stops what `up DIR` started and removes DIR
#
# The binaries are built from two Go modules (versions pinned in their go.mod and go.sum) into
# a cache folder keyed by the Kubernetes version,
# ${KUVERT_CACHE:-~/.cache/kuvert}/control-plane/v1.37.2/; a second run builds nothing:
#   tests/control-plane         etcd, kube-apiserver, kube-controller-manager and helm (Helm 4)
#   tests/control-plane/helm3   helm3: Helm 3, with the Kubernetes modules it is released with
#                               (v0.36; the first module pins them at v0.37 for the API server)
# Each module has its own stamp in the cache, so a change to one rebuilds only its binaries, and
# a checkout that knows only the first module shares the cache without rebuilding anything.
# `up` and `down` are kuvert-testkit's ControlPlane (the type the tests use), run as a command.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
module="$root/tests/control-plane"
helm3_module="$module/helm3"
kube_version="$(grep -m1 -oE 'k8s.io/kubernetes v[0-9.]+' "$module/go.mod" | cut -d" " -f2)"
cache="${KUVERT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kuvert}/control-plane/$kube_version"
binaries=(etcd kube-apiserver kube-controller-manager helm)

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# What a module's binaries were built from: a change to its go.mod or go.sum rebuilds them.
stamp() { cat "$1/go.mod" "$1/go.sum" | sha256sum | cut -c1-16; }

# built MODULE STAMPFILE BINARY...: the binaries are in the cache, built from MODULE as it is.
built_from() {
  local from="$1" stampfile="$2"
  shift 2
  [ "$(cat "$cache/$stampfile" 2>/dev/null)" = "$(stamp "$from")" ] || return 1
  for b in "$@"; do [ -x "$cache/$b" ] || return 1; done
}

control_plane_built() { built_from "$module" .stamp "${binaries[@]}"; }
helm3_built() { built_from "$helm3_module" .stamp-helm3 helm3; }
built() { control_plane_built && helm3_built; }

# The version of module path $2 that the module in $1 requires.
required() { grep -m1 -oE "^\s*$2 v[0-9.]+" "$1/go.mod" | awk '{print $2}'; }

build() {
  mkdir -p "$cache"
  # One build at a time: tests running in parallel all ask for the binaries.
  exec 9>"$cache/.lock"
  flock 9
  if built; then return; fi
  command -v go >/dev/null || { echo "control-plane: go is not installed (Go 1.26 builds the control plane)" >&2; exit 1; }
  # Version stamps, as Kubernetes' and Helm's own release builds set them: kubectl, kube-rs and
  # helm read the server's /version (a v0.0.0-master default breaks kubectl's version check
  # and charts' kubeVersion constraints).
  local kv=k8s.io/component-base/version
  if ! control_plane_built; then
    echo "control-plane: building etcd, kube-apiserver, kube-controller-manager and helm $kube_version into $cache (first time only)" >&2
    local start=$SECONDS
    local helm_version hv=helm.sh/helm/v4/internal/version
    helm_version="$(required "$module" helm.sh/helm/v4)"
    local minor="${kube_version#v*.}"; minor="${minor%%.*}"
    local ldflags="-s -w -X $kv.gitVersion=$kube_version -X $kv.gitMajor=1 -X $kv.gitMinor=$minor"
    ldflags+=" -X $hv.version=$helm_version -X $hv.gitTreeState=clean"
    (cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$cache/" \
      ./etcd \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      helm.sh/helm/v4/cmd/helm)
    stamp "$module" >"$cache/.stamp"
    echo "control-plane: built in $((SECONDS - start)) s" >&2
  fi
  if ! helm3_built; then
    local helm3_version client_go
    helm3_version="$(required "$helm3_module" helm.sh/helm/v3)"
    client_go="$(required "$helm3_module" k8s.io/client-go)"
    echo "control-plane: building helm3 $helm3_version into $cache (first time only)" >&2
    local start=$SECONDS
    # Helm 3's Makefile also stamps the Kubernetes version its client modules speak (client-go
    # v0.N is Kubernetes 1.N): `helm template` reports it as .Capabilities.KubeVersion and
    # `helm lint` checks deprecated APIs against it. Unset, Helm 3 claims Kubernetes 1.20.
    local k8s_minor="${client_go#v0.}"; k8s_minor="${k8s_minor%%.*}"
    local h3=helm.sh/helm/v3 ldflags="-s -w"
    ldflags+=" -X $h3/internal/version.version=$helm3_version -X $h3/internal/version.gitTreeState=clean"
    for pkg in pkg/lint/rules pkg/chartutil; do
      ldflags+=" -X $h3/$pkg.k8sVersionMajor=1 -X $h3/$pkg.k8sVersionMinor=$k8s_minor"
    done
    (cd "$helm3_module" && go build -trimpath -ldflags "$ldflags" -o "$cache/helm3" \
      helm.sh/helm/v3/cmd/helm)
    stamp "$helm3_module" >"$cache/.stamp-helm3"
    echo "control-plane: built helm3 in $((SECONDS - start)) s" >&2
  fi
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
