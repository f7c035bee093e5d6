#!/usr/bin/env bash
# Installs, only where missing, the Debian 12 packages certlc needs to build,
# test and run its demo. Idempotent; runs `apt-get update` at most once.
# Usage: ci/install-deps.sh [--with-node]   (--with-node: also Node.js for interop tests)
set -euo pipefail

packages=(
  ca-certificates gcc libc6-dev make cmake pkg-config openssl
  libssl-dev libcurl4-openssl-dev libcjson-dev libcmocka-dev libcivetweb-dev zlib1g-dev
  jq curl procps
  # Kerberos: GSS-API for the emulated CA's Negotiate, and the test KDC
  # (krb5kdc, kdb5_util; kadmin.local; kinit) of tests/support/kdc.c.
  libkrb5-dev krb5-kdc krb5-admin-server krb5-user
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
# The Kerberos server packages start their daemons after install, which fails
# (and fails the install) where no realm is configured: tests run their own
# KDC, so no service is started here. policy-rc.d is the Debian way to say so;
# one already present is left as it is.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 0755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
