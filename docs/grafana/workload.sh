#!/usr/bin/env bash
# The workload behind docs/grafana/dashboard.png (run by render.sh against KUBECONFIG):
#   workload.sh MINUTES WORKDIR
# Phases, as fractions of MINUTES, so that every panel has something to show:
#   0    the examples (quickstart, generators, templating), 40 ExternalSecrets refreshing every
#        30 s from a fake store, and a Password generator regenerating every minute
#   0.2  10 ExternalSecrets reading keys the store lacks (RemoteSecretNotFound) and a Vault
#        store on a loopback port nothing listens on, with 3 ExternalSecrets using it
#   0.5  a force-sync of every ExternalSecret (`kuvert.io/force-sync`)
#   0.65 the missing keys added to the store: those 10 recover, the Vault ones keep failing
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
minutes="$1"
work="$2"
total=$((minutes * 60))
began="$(date +%s)"

# Sleeps until FRACTION of the run has passed.
at() {
  local due
  due="$(python3 -c "print(int($began + $1 * $total))")"
  while [ "$(date +%s)" -lt "$due" ]; do sleep 1; done
}

# The fake store `demo` with the quickstart's keys, and with `orders/key-N` when $1 is "with-orders".
store() {
  cat <<'EOF'
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {name: demo, namespace: default}
spec:
  provider:
    fake:
      data:
        - {key: app/database, value: '{"username":"app","password":"s3cr3t","host":"db.internal"}', version: "3"}
        - {key: app/api-token, value: tok-1234567890}
EOF
  if [ "${1:-}" = with-orders ]; then
    for i in $(seq 1 10); do echo "        - {key: orders/key-$i, value: order-secret-$i}"; done
  fi
}

external_secret() { # NAME STORE KEY REFRESH [STORE_KIND]
  cat <<EOF
---
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {name: $1, namespace: default}
spec:
  refreshInterval: $4
  secretStoreRef: {name: $2}
  target: {name: $1}
  data: [{secretKey: value, remoteRef: {key: $3}}]
EOF
}

at 0
kubectl apply -f "$root/examples/quickstart" -f "$root/examples/generators" \
  -f "$root/examples/templating" >/dev/null
{
  store
  for i in $(seq 1 40); do external_secret "app-$i" demo app/api-token 30s; done
  cat <<'EOF'
---
apiVersion: kuvert.io/v1alpha1
kind: ExternalSecret
metadata: {name: rotated-password, namespace: default}
spec:
  refreshInterval: 1m
  target: {name: rotated-password}
  dataFrom:
    - sourceRef:
        generatorRef: {apiVersion: generators.kuvert.io/v1alpha1, kind: Password, name: app-password}
EOF
} >"$work/phase-0.yaml"
kubectl apply -f "$work/phase-0.yaml" >/dev/null

at 0.2
closed_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
{
  for i in $(seq 1 10); do external_secret "orders-$i" demo "orders/key-$i" 30s; done
  cat <<EOF
---
apiVersion: v1
kind: Secret
metadata: {name: vault-token, namespace: default}
stringData: {token: not-a-real-token}
---
apiVersion: kuvert.io/v1alpha1
kind: SecretStore
metadata: {name: vault, namespace: default}
spec:
  provider:
    vault:
      server: http://127.0.0.1:$closed_port
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
EOF
  for i in $(seq 1 3); do external_secret "from-vault-$i" vault "app/key-$i" 30s; done
} >"$work/phase-1.yaml"
kubectl apply -f "$work/phase-1.yaml" >/dev/null

at 0.5
kubectl annotate externalsecrets --all -n default "kuvert.io/force-sync=$(date +%s)" --overwrite >/dev/null

at 0.65
store with-orders | kubectl apply -f - >/dev/null

at 1
