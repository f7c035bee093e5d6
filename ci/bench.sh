#!/usr/bin/env bash
# Benchmarks. Usage: ci/bench.sh BENCHMARK [options]
#   queue   put+get+delete cycles/s through certlc's queue client against the
#           emulator and against Azurite, sequential and 8 in flight, with the
#           emulator/Azurite ratio (target >= 10).
#   keyvault  renewal cycles/s (create issuer Unknown -> pending CSR -> sign ->
#           merge -> get) through certlc's Key Vault client against the
#           in-process emulator, EC P-256 and RSA-2048, beside the crypto alone
#           (targets: EC >= 500/s, RSA >= 85% of crypto). Cycle counts:
#           CERTLC_BENCH_EC_CYCLES (1000), CERTLC_BENCH_RSA_CYCLES (100).
#   sync    a poll of 100 unchanged certificates through certlc sync: wall and
#           CPU time per poll (target <= 50 ms CPU) and the daemon's idle RSS
#           (target <= 10 MB).
# Builds in Release into $CERTLC_BENCH_BUILD (default build/bench). Each
# benchmark is one function below; add new ones to the dispatcher.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CERTLC_BENCH_BUILD:-$root/build/bench}
seconds=${CERTLC_BENCH_SECONDS:-5}

usage() {
  echo "usage: ci/bench.sh queue|keyvault|sync" >&2
  exit 2
}

# Configures Release (as ci/build.sh does) and builds only the given targets.
build_targets() {
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCLC_SANITIZE=OFF -DCLC_WERROR=ON >/dev/null
  cmake --build "$build" -j"$(nproc)" --target "$@" >/dev/null
}

# Starts certlc-emulator with its state in memory (as Azurite runs here),
# files in $1 (a temp dir); sets EMU_PID and ENDPOINTS.
start_emulator() {
  local tmp=$1
  "$build/emulator/certlc-emulator" --endpoints-file "$tmp/endpoints.json" \
    --quiet >"$tmp/emulator.log" 2>&1 &
  EMU_PID=$!
  for _ in $(seq 300); do
    [[ -s "$tmp/endpoints.json" ]] && break
    kill -0 "$EMU_PID" 2>/dev/null || { cat "$tmp/emulator.log" >&2; return 1; }
    sleep 0.1
  done
  [[ -s "$tmp/endpoints.json" ]] || { echo "emulator not ready after 30 s" >&2; return 1; }
  ENDPOINTS="$tmp/endpoints.json"
}

json_field() { # file, JS expression on `d`
  node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(eval(process.argv[2]))' "$1" "$2"
}

rate_of() { sed -n 's/.*rate=\([0-9.]*\).*/\1/p'; }

bench_queue() {
  build_targets bench_queue certlc-emulator
  local bench="$build/tests/bench/bench_queue"
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/certlc-bench.XXXXXX")
  EMU_PID= AZ_PID=
  trap 'for p in $EMU_PID $AZ_PID; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$BENCH_TMP"' EXIT
  local tmp=$BENCH_TMP
  start_emulator "$tmp"
  local emu_url ca
  emu_url="$(json_field "$ENDPOINTS" 'd.services.queue')/devstoreaccount1"
  ca=$(json_field "$ENDPOINTS" 'd.ca_bundle')
  read -r AZ_PID az_port < <("$root/tests/interop/run-azurite.sh" "$tmp/azurite.log")
  local az_url="http://127.0.0.1:$az_port/devstoreaccount1"

  echo "queue benchmark: put+get+delete cycles/s, ${seconds} s per run, certlc queue client (Release)"
  printf '%-12s %-10s %12s\n' target inflight cycles/s
  declare -A r
  for t in 1 8; do
    r[emu$t]=$("$bench" --endpoint "$emu_url" --ca-bundle "$ca" --threads "$t" --seconds "$seconds" | rate_of)
    printf '%-12s %-10s %12s\n' emulator "$t" "${r[emu$t]}"
    r[az$t]=$("$bench" --endpoint "$az_url" --threads "$t" --seconds "$seconds" | rate_of)
    printf '%-12s %-10s %12s\n' azurite "$t" "${r[az$t]}"
  done
  for t in 1 8; do
    awk -v e="${r[emu$t]}" -v a="${r[az$t]}" -v t="$t" \
      'BEGIN { printf "ratio emulator/azurite, %s in flight: %.1fx%s\n", t, e / a, (e / a >= 10 ? "" : " (below the 10x target)") }'
  done
}

# The emulator runs inside the benchmark program (less noise than a second
# process); a target missed is printed as SHORT, not an error.
bench_keyvault() {
  build_targets bench_keyvault
  # The machine may be shared: the load says how much to trust absolute rates.
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
  "$build/tests/bench/bench_keyvault" --ec-cycles "${CERTLC_BENCH_EC_CYCLES:-1000}" \
    --rsa-cycles "${CERTLC_BENCH_RSA_CYCLES:-100}"
}

# certlc sync: a poll of 100 unchanged certificates (wall and CPU per poll,
# target <= 50 ms CPU) and the daemon binary's idle RSS (target <= 10 MB).
bench_sync() {
  build_targets bench_sync certlc
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
  "$build/tests/bench/bench_sync" --certs "${CERTLC_BENCH_SYNC_CERTS:-100}" \
    --polls "${CERTLC_BENCH_SYNC_POLLS:-20}" --certlc "$build/src/cli/certlc"
}

case "${1:-}" in
  queue) bench_queue ;;
  keyvault) bench_keyvault ;;
  sync) bench_sync ;;
  *) usage ;;
esac
