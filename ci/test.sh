#!/usr/bin/env bash
# The whole test suite, as CI runs it: install what is missing, build with
# -Wall -Wextra -Werror under AddressSanitizer and UndefinedBehaviorSanitizer,
# fetch the interop tests' npm packages, and run every test through ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CERTLC_BUILD_DIR:-$root/build/ci}

"$root/ci/install-deps.sh" --with-node
"$root/ci/build.sh" "$build" Debug sanitize
# The optimiser sees more (e.g. -Wformat-truncation): the Release build the
# demo and the benchmarks use must compile with -Werror too.
"$root/ci/build.sh" "${CERTLC_RELEASE_BUILD_DIR:-$root/build/release}" Release >/dev/null

if command -v npm >/dev/null 2>&1 && [[ -f "$root/tests/interop/package-lock.json" ]]; then
  (cd "$root/tests/interop" && npm ci --no-audit --no-fund --loglevel=error)
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 600 -j2
