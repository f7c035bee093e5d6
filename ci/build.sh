#!/usr/bin/env bash
# Configures and builds certlc. Usage: ci/build.sh BUILD_DIR [Debug|Release] [sanitize]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:?usage: ci/build.sh BUILD_DIR [Debug|Release] [sanitize]}
type=${2:-Debug}
san=OFF
[[ "${3:-}" == "sanitize" ]] && san=ON
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DCLC_SANITIZE="$san" -DCLC_WERROR=ON >/dev/null
cmake --build "$dir" -j"$(nproc)"
