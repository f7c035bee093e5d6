#!/usr/bin/env bash
# Installs, only where missing, the Debian 12 packages certlc needs to build,
# test and run its demo. Idempotent; runs `apt-get update` at most once.
# Usage: ci/install-deps.sh [--with-node]   (--with-node: also Node.js for interop tests)
set -euo pipefail

packages=(
  ca-certificates gcc libc6-dev make cmake pkg-config openssl
  libssl-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev libcivetweb-dev zlib1g-dev
  jq curl procps
)
if [[ "${1:-}" == "--with-node" ]]; then
  # Node.js and npm run the official Azure SDKs in tests/interop. A machine that
  # already has a node (e.g. from another repository) keeps it.
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  command -v npm >/dev/null 2>&1 || packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=sudo
  else
    echo "install-deps: not root and no sudo; install as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
