#!/usr/bin/env bash
# Re-makes docs/grafana/dashboard.png, the Grafana dashboard (docs/grafana/kuvert.json) as a
# picture, from real metrics: no Grafana needed, and nothing in it is invented.
#
#   docs/grafana/render.sh [MINUTES]      (default 10; not run in CI)
#
# 1. `kuvert dev --no-operator` serves the in-memory API server; two `kuvert run` replicas with
#    leader election run against it, as the chart runs them (`replicaCount: 2`).
# 2. A real Prometheus scrapes both every 5 s, with the labels the chart's ServiceMonitor gives
#    (job kuvert-metrics, namespace kuvert).
# 3. A workload runs for MINUTES (docs/grafana/workload.sh): the examples, 40 ExternalSecrets
#    refreshing every 30 s, a Password generator regenerating, a wave of ExternalSecrets reading
#    keys the store lacks and a Vault store that cannot be reached (both fail), a force-sync of
#    everything, then the missing keys added (those recover).
# 4. render.py asks Prometheus for every panel's expression (the dashboard's own PromQL, with
#    $job and $namespace at "All" and $__rate_interval at 4 scrape intervals, as Grafana sets
#    it) and draws the panels in the dashboard's grid, with their titles and units.
#
# SAVE=FILE keeps Prometheus' answers, so that `render.py --load FILE --dashboard ... --out ...`
# redraws the picture (after a change to render.py) without running anything.
#
# Needs: cargo, kubectl, prometheus (Debian's `prometheus` package), python3 with matplotlib
# (`pip install matplotlib`). KUVERT=PATH uses a kuvert binary instead of building one (a debug
# build is the default: the picture shows the dashboard, bench/README.md has the figures).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
minutes="${1:-10}"
for tool in kubectl prometheus python3; do
  command -v "$tool" >/dev/null || { echo "render.sh: $tool is missing" >&2; exit 1; }
done
python3 -c 'import matplotlib' 2>/dev/null || { echo "render.sh: pip install matplotlib" >&2; exit 1; }

if [ -z "${KUVERT:-}" ]; then
  (cd "$root" && cargo build --quiet -p kuvert-operator --bin kuvert)
  KUVERT="$root/target/debug/kuvert"
fi

work="$(mktemp -d)"
pids=()
cleanup() {
  local status=$?
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log; do echo "== $log" >&2; tail -n 20 "$log" >&2; done
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# 1. The API server and two replicas of the operator.
export KUBECONFIG="$work/kubeconfig"
"$KUVERT" dev --no-operator --kubeconfig "$KUBECONFIG" >"$work/dev.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$KUBECONFIG" ] && kubectl get ns default >/dev/null 2>&1 && break; sleep 0.2; done
kubectl create namespace kuvert >/dev/null
targets=()
for replica in a b; do
  port="$(free_port)"
  POD_NAME="kuvert-$replica" POD_NAMESPACE=kuvert "$KUVERT" run --metrics-addr "127.0.0.1:$port" \
    --leader-election --log-level warn >"$work/kuvert-$replica.log" 2>&1 &
  pids+=($!)
  targets+=("127.0.0.1:$port")
done

# 2. Prometheus, scraping them as the ServiceMonitor would.
prom_port="$(free_port)"
{
  echo "global: {scrape_interval: 5s, evaluation_interval: 5s}"
  echo "scrape_configs:"
  echo "  - job_name: kuvert-metrics"
  echo "    static_configs:"
  for i in "${!targets[@]}"; do
    echo "      - targets: ['${targets[$i]}']"
    echo "        labels: {namespace: kuvert, pod: kuvert-$([ "$i" = 0 ] && echo a || echo b)}"
  done
} >"$work/prometheus.yml"
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=($!)
start="$(date +%s)"

# 3. The workload.
bash "$here/workload.sh" "$minutes" "$work"

# 4. The picture: the whole run, ending at the last scrape.
sleep 6
python3 "$here/render.py" --prometheus "http://127.0.0.1:$prom_port" --start "$start" \
  --end "$(date +%s)" --dashboard "$here/kuvert.json" --out "$here/dashboard.png" \
  --save "${SAVE:-$work/answers.json}"
echo "wrote $here/dashboard.png"
