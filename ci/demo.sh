#!/usr/bin/env bash
# The one command a newcomer runs: build certlc, start the emulator of the
# Azure services it talks to, and walk through what works today.
# Usage: ci/demo.sh   (needs root or sudo only if packages are missing)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CERTLC_BUILD_DIR:-$root/build/release}
work=$(mktemp -d /tmp/certlc-demo.XXXXXX)
emu_pid=

cleanup() {
  if [[ -n "$emu_pid" ]] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid"
    wait "$emu_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. Installing what is missing and building (Release)"
"$root/ci/install-deps.sh"
"$root/ci/build.sh" "$build" Release >/dev/null
echo "built $build/src/cli/certlc and $build/emulator/certlc-emulator"

step "2. Starting the emulator (Entra ID, managed identity endpoints, control API)"
"$build/emulator/certlc-emulator" --data-dir "$work/emu" --endpoints-file "$work/endpoints.json" \
  --quiet &
emu_pid=$!
for _ in $(seq 1 100); do
  [[ -s "$work/endpoints.json" ]] && break
  kill -0 "$emu_pid" 2>/dev/null || { echo "emulator exited early" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$work/endpoints.json" ]] || { echo "emulator did not come up within 10 s" >&2; exit 1; }
jq '{services, ca_bundle, tenant, identities: (.identities | keys)}' "$work/endpoints.json"

step "3. Configuring certlc as the 'renewer' identity (client secret from a 0600 file)"
umask 077
jq -r '.identities.renewer.client_secret' "$work/endpoints.json" > "$work/renewer.secret"
jq -n --slurpfile ep "$work/endpoints.json" --arg secret "$work/renewer.secret" '{
  log: {level: "warn"},
  http: {ca_bundle: $ep[0].ca_bundle},
  auth: {
    method: "client_secret",
    authority_host: $ep[0].services.entra,
    tenant_id: $ep[0].tenant,
    client_id: $ep[0].identities.renewer.client_id,
    client_secret_file: $secret
  }
}' > "$work/certlc.json"
cat "$work/certlc.json"
"$build/src/cli/certlc" --config "$work/certlc.json" config check

step "4. Obtaining a Key Vault token as 'renewer' (decoded: header and claims, no signature)"
"$build/src/cli/certlc" --config "$work/certlc.json" token --scope https://vault.azure.net/.default

step "5. Stopping the emulator"
kill -TERM "$emu_pid"
wait "$emu_pid" && echo "emulator stopped cleanly"
emu_pid=
