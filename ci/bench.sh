#!/usr/bin/env bash
# Benchmarks. Usage: ci/bench.sh BENCHMARK [options]
#   queue   put+get+delete cycles/s through certlc's queue client against the
#           emulator (plain-http listener, as Azurite; https shown too) and
#           against Azurite, sequential and 8 in flight, with CPU per cycle and
#           the emulator/Azurite ratio (target >= 10, PASS/SHORT), after a
#           warm-up run of each. Median of CERTLC_BENCH_RUNS (3) interleaved
#           runs of CERTLC_BENCH_SECONDS (3). Beside them, the loopback
#           ceiling: bare TCP round trips between two processes, no HTTP.
#   keyvault  renewal cycles/s (create issuer Unknown -> pending CSR -> sign ->
#           merge -> get) through certlc's Key Vault client against the
#           in-process emulator, EC P-256 and RSA-2048, beside the crypto alone
#           (targets: EC >= 500/s, RSA >= 85% of crypto). Cycle counts:
#           CERTLC_BENCH_EC_CYCLES (1000), CERTLC_BENCH_RSA_CYCLES (100).
#   sync    a poll of 100 unchanged certificates through certlc sync: wall and
#           CPU time per poll (target <= 50 ms CPU) and the daemon's idle RSS
#           (target <= 10 MB).
#   renew   1,000 certificates (EC P-256) renewed end to end (queue -> certlc
#           renew -> Key Vault -> CA -> merge -> e-mail -> Log Analytics) with
#           1, 2 and 4 worker threads: renewals/s (target >= 200 with 2), the
#           worker's CPU per renewal and peak RSS (target <= 16 MB).
#           CERTLC_BENCH_RENEW_CERTS (1000), CERTLC_BENCH_RENEW_THREADS (1,2,4).
# Builds in Release into $CERTLC_BENCH_BUILD (default build/bench). Each
# benchmark is one function below; add new ones to the dispatcher.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CERTLC_BENCH_BUILD:-$root/build/bench}
seconds=${CERTLC_BENCH_SECONDS:-3}

usage() {
  echo "usage: ci/bench.sh queue|keyvault|sync|renew" >&2
  exit 2
}

# Configures Release (as ci/build.sh does) and builds only the given targets,
# after installing what is missing (as ci/test.sh does; a caller needing
# Node.js sets deps_flags=--with-node).
build_targets() {
  "$root/ci/install-deps.sh" ${deps_flags:-}
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

field_of() { sed -n "s/.*[ ]$1=\([0-9.]*\).*/\1/p"; }

# CPU time (user + system) of a process so far, in microseconds.
proc_cpu_us() {
  local ticks
  ticks=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
  echo $((ticks * 1000000 / $(getconf CLK_TCK)))
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# One run of bench_queue; prints "rate client_us server_us" (CPU per cycle).
queue_run() { # url threads server_pid [ca]
  local out before after
  before=$(proc_cpu_us "$3")
  out=$("$build/tests/bench/bench_queue" --endpoint "$1" --threads "$2" --seconds "$seconds" \
    ${4:+--ca-bundle "$4"}) || { echo "bench_queue failed against $1 ($2 in flight)" >&2; return 1; }
  after=$(proc_cpu_us "$3")
  local rate cycles
  rate=$(field_of rate <<<"$out")
  cycles=$(field_of cycles <<<"$out")
  echo "$rate $(field_of client_cpu_us_per_cycle <<<"$out") $(((after - before) / (cycles > 0 ? cycles : 1)))"
}

# What decides the cost of waking a thread on another core, when it is
# known: in a KVM guest whose cpuidle driver is haltpoll with polling off
# (guest_halt_poll_ns=0) every idle core halts, and each wake-up across
# cores is an exit to the hypervisor and an interrupt back; that dominates
# the sequential figures (see the loopback rows).
idle_note() {
  local drv=/sys/devices/system/cpu/cpuidle/current_driver hp=/sys/module/haltpoll/parameters/guest_halt_poll_ns
  [[ -r $drv ]] || return 0
  if [[ $(cat "$drv") == haltpoll && -r $hp ]]; then
    echo "cpuidle: haltpoll, guest_halt_poll_ns=$(cat "$hp")$([[ $(cat "$hp") == 0 ]] && echo ' (no polling: every cross-core wake-up is a VM exit and an IPI)')"
  else
    echo "cpuidle: $(cat "$drv")"
  fi
}

# Stops a process: SIGTERM, then SIGKILL if it is still there after 5 s
# (Azurite's SIGTERM handler needs its event loop, which may be busy).
stop_pid() { # pid
  [[ -n $1 ]] || return 0
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 50); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# A short run at 8 in flight whose figures are thrown away: JIT, caches and
# first allocations of a server before it is measured.
warm_up() { # url server_pid
  local seconds=2
  queue_run "$1" 8 "$2" >/dev/null
}

# One Azurite measurement on a fresh instance, warmed up first; prints what
# queue_run prints. A fresh instance each time because Azurite's extent GC
# first runs 60 s after start and deletes extents one by one, re-sorting its
# index each time: after a few thousand messages it blocks the event loop
# for minutes (seen with 3.35.0), which would stall or flatter the run.
azurite_run() { # tmp threads
  local port res
  read -r AZ_PID port < <("$root/tests/interop/run-azurite.sh" "$1/azurite.log") || true
  [[ -n ${port:-} ]] || { cat "$1/azurite.log" >&2; echo "azurite did not start" >&2; return 1; }
  warm_up "http://127.0.0.1:$port/devstoreaccount1" "$AZ_PID"
  res=$(queue_run "http://127.0.0.1:$port/devstoreaccount1" "$2" "$AZ_PID")
  stop_pid "$AZ_PID"
  AZ_PID=''
  echo "$res"
}

# One run of bench_loopback; prints put+get+delete cycles/s that bare TCP
# round trips between two processes allow (a cycle is three round trips).
loopback_run() { # threads
  local out secs=${seconds%.*}
  [[ $secs =~ ^[0-9]+$ && $secs -ge 1 ]] || secs=1
  out=$("$build/tests/bench/bench_loopback" --threads "$1" --seconds "$secs") ||
    { echo "bench_loopback failed ($1 in flight)" >&2; return 1; }
  awk -v r="$(field_of rate <<<"$out")" 'BEGIN { printf "%.1f", r / 3 }'
}

# Like with like: Azurite serves plain http only, so the ratio is taken
# against the emulator's plain-http listener (queue-http); its HTTPS listener
# (queue) is measured too and shown for information. Rows are interleaved and
# repeated (median shown) so that other load on the machine hits both sides
# alike; a missed target is printed as SHORT, not an error.
bench_queue() {
  local deps_flags=--with-node
  build_targets bench_queue bench_loopback certlc-emulator
  # Azurite is the peer: installed as ci/test.sh installs it, when missing.
  if [[ ! -x "$root/tests/interop/node_modules/.bin/azurite-queue" ]]; then
    (cd "$root/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/certlc-bench.XXXXXX")
  EMU_PID='' AZ_PID=''
  trap 'for p in $EMU_PID $AZ_PID; do stop_pid "$p"; done; rm -rf "$BENCH_TMP"' EXIT
  local tmp=$BENCH_TMP runs=${CERTLC_BENCH_RUNS:-3}
  start_emulator "$tmp"
  local emu_http emu_https ca
  emu_http="$(json_field "$ENDPOINTS" 'd.services["queue-http"]')/devstoreaccount1"
  emu_https="$(json_field "$ENDPOINTS" 'd.services.queue')/devstoreaccount1"
  ca=$(json_field "$ENDPOINTS" 'd.ca_bundle')

  echo "queue benchmark: put+get+delete cycles/s through certlc's queue client (Release build),"
  echo "SharedKey auth, one keep-alive connection per client thread, median of $runs runs of ${seconds} s"
  echo "emulator: certlc-emulator, listener queue-http (plain http/1.1) for the ratio, queue (https) for information"
  echo "azurite:  $(node -p 'require(process.argv[1]).version' "$root/tests/interop/node_modules/azurite/package.json" 2>/dev/null || echo '?'), queue service, plain http/1.1 (it has no other), in-memory,"
  echo "          a fresh instance for each run, warmed up first (see azurite_run)"
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores (client and servers share them)"
  idle_note
  local load_before
  load_before=$(cut -d' ' -f1 /proc/loadavg)
  if awk -v l="$load_before" -v c="$(nproc)" 'BEGIN { exit !(l > c / 2) }'; then
    echo "WARNING: the machine is busy before the benchmark starts; other work competes for the cores"
    echo "         the benchmark needs, so rates and ratios below are noisy (see the spread)"
  fi
  declare -A rate cli srv floor
  local names=(emu-http azurite emu-https)
  # Warm-up, not counted: the emulator's first allocations (Azurite's own
  # warm-up is in azurite_run).
  warm_up "$emu_http" "$EMU_PID"
  for ((i = 0; i < runs; i++)); do
    for t in 1 8; do
      floor[$t]+="$(loopback_run "$t") "
    done
    for t in 1 8; do
      for n in "${names[@]}"; do
        local res
        case $n in
        emu-http) res=$(queue_run "$emu_http" "$t" "$EMU_PID") ;;
        azurite) res=$(azurite_run "$tmp" "$t") ;;
        emu-https) res=$(queue_run "$emu_https" "$t" "$EMU_PID" "$ca") ;;
        esac
        read -r a b c <<<"$res"
        rate[$n$t]+="$a " cli[$n$t]+="$b " srv[$n$t]+="$c "
      done
    done
  done
  printf '%-9s %-11s %-6s %8s %9s  %s\n' target listener proto inflight cycles/s "CPU us/cycle client+server"
  local -A label=([emu-http]="emulator queue-http http" [azurite]="azurite queue http"
    [emu-https]="emulator queue https")
  declare -A med
  for t in 1 8; do
    for n in "${names[@]}"; do
      med[$n$t]=$(median <<<"${rate[$n$t]}")
      # shellcheck disable=SC2086 # the label is three words on purpose
      printf '%-9s %-11s %-6s %8s %9.0f  %s\n' ${label[$n]} "$t" "${med[$n$t]}" \
        "$(median <<<"${cli[$n$t]}")+$(median <<<"${srv[$n$t]}")"
    done
  done
  for t in 1 8; do
    med[floor$t]=$(median <<<"${floor[$t]}")
    printf '%-9s %-11s %-6s %8s %9.0f  %s\n' loopback bare-tcp tcp "$t" "${med[floor$t]}" \
      "(3 round trips of 700 B, no HTTP: the ceiling for any client and server here)"
  done
  echo "all runs, cycles/s: $(for t in 1 8; do for n in "${names[@]}"; do printf '%s/%s=[%s] ' "$n" "$t" "${rate[$n$t]% }"; done; done | sed 's/ $//')"
  # The ratio of each round's neighbouring runs (same moment, same load),
  # median over rounds; the spread shows how much the machine disturbed it.
  for t in 1 8; do
    awk -v e="${rate[emu-http$t]}" -v a="${rate[azurite$t]}" -v s="${rate[emu-https$t]}" -v t="$t" '
      function med(v, n,   i, j, x) {
        for (i = 2; i <= n; i++) { x = v[i]; for (j = i - 1; j > 0 && v[j] > x; j--) v[j + 1] = v[j]; v[j + 1] = x }
        return v[int((n + 1) / 2)]
      }
      BEGIN {
        n = split(e, ev, " "); split(a, av, " "); split(s, sv, " ")
        lo = 1e9; hi = 0
        for (i = 1; i <= n; i++) {
          r[i] = av[i] > 0 ? ev[i] / av[i] : 0; q[i] = av[i] > 0 ? sv[i] / av[i] : 0
          if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i]
        }
        m = med(r, n)
        printf "ratio emulator(queue-http)/azurite, %s in flight: %.1fx (median of %d rounds, %.1f-%.1f), target >= 10x: %s (https listener: %.1fx)\n",
               t, m, n, lo, hi, (m >= 10 ? "PASS" : "SHORT"), med(q, n)
      }'
    # What bare sockets allow: the loopback ceiling over Azurite's rate. A
    # ceiling under 10x means no client and server could meet the target on
    # this machine at this load.
    awk -v f="${med[floor$t]}" -v a="${med[azurite$t]}" -v e="${med[emu-http$t]}" -v t="$t" 'BEGIN {
      c = (a > 0) ? f / a : 0
      share = (f > 0) ? 100 * e / f : 0
      why = (c < 10) ? " (under 10x: the target is out of reach on this machine)" : ""
      printf "  loopback ceiling, %s in flight: %.0f cycles/s = %.1fx azurite%s; the emulator reaches %.0f%% of it\n", t, f, c, why, share
    }'
  done
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
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

# The renewal pipeline end to end: the emulator in the benchmark program,
# certlc renew in its own process so its CPU and memory are its own.
bench_renew() {
  build_targets bench_renew certlc
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
  "$build/tests/bench/bench_renew" --certlc "$build/src/cli/certlc" \
    --certs "${CERTLC_BENCH_RENEW_CERTS:-1000}" --threads "${CERTLC_BENCH_RENEW_THREADS:-1,2,4}"
}

case "${1:-}" in
  queue) bench_queue ;;
  keyvault) bench_keyvault ;;
  sync) bench_sync ;;
  renew) bench_renew ;;
  *) usage ;;
esac
