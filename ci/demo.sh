#!/usr/bin/env bash
# shellcheck disable=SC2016  # jq programs are single-quoted: their $x are jq's
# The one command a newcomer runs: builds certlc, starts the emulator of the
# Azure services it talks to, and tells the renewal story end to end: a
# certificate nears expiry, Event Grid queues the warning, the worker renews
# it through the enterprise CA, the recipient gets an e-mail, Log Analytics
# gets the record; then the CA goes down and the renewal waits and recovers.
# Every step is checked, so the demo is also a smoke test (exit 1 on failure).
# Usage: ci/demo.sh [--pause]   (--pause: wait for Enter between acts)
#        CERTLC_BUILD_DIR=DIR ci/demo.sh   (default build/release)
# Needs root or sudo only if packages are missing (ci/install-deps.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CERTLC_BUILD_DIR:-$root/build/release}
case "$*" in
  '') ;;
  --pause) export DEMO_PAUSE=1 ;;
  -h | --help) sed -n '3,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
  *) echo "usage: ci/demo.sh [--pause]" >&2; exit 2 ;;
esac

work=$(mktemp -d /tmp/certlc-demo.XXXXXX)
ep=$work/endpoints.json
certlc_bin=$build/src/cli/certlc
storage_account=devstoreaccount1
emu_pid='' serve_pid=''

cleanup() {
  local rc=$?
  # On failure, the last words of each process before their files go.
  if [[ $rc -ne 0 ]]; then
    for f in emulator.log renew.log serve.log; do
      [[ -s $work/$f ]] && { echo "--- last lines of $f" >&2; tail -n 15 "$work/$f" >&2; }
    done
  fi
  for pid in "$serve_pid" "$emu_pid"; do
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
# shellcheck source=ci/demo-lib.sh
source "$root/ci/demo-lib.sh"

cl() { "$certlc_bin" --config "$work/certlc.json" "$@"; }
day=86400
now=$(date +%s)

# =============================================================================
act "Build certlc and its Azure emulator (Release)"
"$root/ci/install-deps.sh"
say "Building into $build (a few minutes the first time)..."
"$root/ci/build.sh" "$build" Release >/dev/null
say "certlc ($certlc_bin) renews Key Vault certificates that an enterprise CA issues;"
say "certlc-emulator stands in for Azure: Entra ID, Key Vault, Event Grid, Storage,"
say "Log Analytics, an AD CS-like CA and a mail server, each on its own 127.0.0.1 port."

# =============================================================================
act "Start the emulator, wired as in production"
say "Event Grid: the vault's system topic -> Storage queue 'certlc' (NearExpiry only,"
say "base64 messages that never expire, dead-letter container). certlc's own webhook is"
say "subscribed later, once it listens (Azure validates a webhook when it is created)."
jq -n --arg acct "$storage_account" '{
  identities: [
    {name: "renewer", roles: ["Key Vault Certificates Officer", "Storage Queue Data Contributor",
                              "Storage Blob Data Contributor", "Monitoring Metrics Publisher"]},
    {name: "admin", roles: ["admin"]}],
  eventgrid: {subscriptions: [{
    name: "certlc-queue", topic: "certlc",
    destination: {type: "storagequeue", account: $acct, queue: "certlc",
                  message_ttl_seconds: -1},
    filter: {included_event_types: ["Microsoft.KeyVault.CertificateNearExpiry"]},
    retry_policy: {max_delivery_attempts: 30, event_ttl_minutes: 1440},
    dead_letter: {account: $acct, container: "certlc-deadletter"}}]}}' >"$work/emulator.json"
"$build/emulator/certlc-emulator" --config "$work/emulator.json" --data-dir "$work/emu" \
  --endpoints-file "$ep" --quiet 2>"$work/emulator.log" &
emu_pid=$!
up() {
  [[ -s $ep ]] && return 0
  kill -0 "$emu_pid" 2>/dev/null || { cat "$work/emulator.log" >&2; die "the emulator exited"; }
  return 1
}
wait_for 20 "the emulator's endpoints file" up
jq -r '{control: "the emulator'"'"'s control API: clock, faults, seeding", entra: "Microsoft Entra ID: tokens",
  imds: "VM managed identity endpoint", arc: "Azure Arc identity endpoint",
  keyvault: "Key Vault (one vault, \"certlc\")", queue: "Storage queues", "queue-http": "",
  blob: "Storage blobs (Event Grid dead letters)", ca: "enterprise CA: AD CS web enrollment, EST",
  eventgrid: "Event Grid", mailbox: "the mail viewer (SMTP: \(.smtp.url))",
  loganalytics: "Logs Ingestion API (data collection endpoint)",
  logquery: "Log Analytics query API"} as $what
  | .services | to_entries[] | select($what[.key] != "")
  | "  \(.key | . + " " * (13 - length))\(.value | if type == "object" then .certlc else . end | . + " " * (24 - length))  \($what[.key] // "")"' "$ep"
say "certlc's identity 'renewer' holds exactly the roles it needs (docs/operations.md):"
jq -r '.identities[] | select(.name == "renewer") | .roles | join(", ")' "$work/emulator.json" |
  fold -s -w 90 | indent
say "The work queue, the poison queue and the dead-letter container (as 'az storage' would):"
storage PUT queue /certlc >/dev/null
storage PUT queue /certlc-poison >/dev/null
storage PUT blob "/certlc-deadletter?restype=container" >/dev/null
ok "queues certlc, certlc-poison and container certlc-deadletter exist"

# =============================================================================
act "Configure certlc: one JSON file, secrets in 0600 files"
umask 077
epq .identities.renewer.client_secret >"$work/renewer.secret"
epq .ca_accounts.renewer >"$work/ca.password"
epq .smtp_accounts.certlc >"$work/smtp.password"
ecurl "$(epq .services.ca)/CertEnroll/certlc-root-ca.crt?Enc=b64" >"$work/corp-root.pem"
jq -n --slurpfile e "$ep" --arg w "$work" --arg acct "$storage_account" '$e[0] as $e | {
  log: {level: "info"},
  http: {ca_bundle: $e.ca_bundle},
  auth: {method: "client_secret", authority_host: $e.services.entra, tenant_id: $e.tenant,
         client_id: $e.identities.renewer.client_id, client_secret_file: "\($w)/renewer.secret"},
  keyvault: {vaults: {certlc: $e.services.keyvault.certlc}, verify_challenge_resource: false},
  ca: {corp: {type: "adcs", url: "\($e.services.ca)/certsrv", auth: "basic",
              username: "renewer", password_file: "\($w)/ca.password",
              trust_anchors: "\($w)/corp-root.pem"}},
  renew: {queue: {url: "\($e.services.queue)/\($acct)", auth: "bearer"},
          deadletter: {url: "\($e.services.blob)/\($acct)"},
          default_ca: "corp", default_template: "WebServer"},
  smtp: {url: $e.smtp.url, from: "certlc <certlc@contoso.test>", username: "certlc",
         password_file: "\($w)/smtp.password"},
  loganalytics: {endpoint: $e.services.loganalytics,
                 dcr_id: $e.log_analytics.dcrs["Custom-CertlcRenewal_CL"]}
}' >"$work/certlc.json"
say "$work/certlc.json, one line per section (paths shortened):"
jq -r 'to_entries[] | "\(.key): \(.value | tostring)"' "$work/certlc.json" |
  sed "s|$work/||g" | indent
show cl config check | indent

# =============================================================================
act "Three weeks ago: a vault with three certificates"
say "The vault warns (CertificateNearExpiry) 30 days before a certificate expires."
say "So that we can watch that happen, the emulator's clock goes back 21 days first"
say "(certlc checks what the CA issues against this machine's clock; after the fast-forward"
say "both clocks agree again). The certificates are seeded through the emulator's control"
say "route; in Azure they would be ones your CA issued a year ago."
control PUT /control/clock "{\"now\": $((now - 21 * day))}" | jq -c '{now_iso}' | indent
seed() { control POST /control/keyvault/certlc/seed "$1" | jq -r --arg n "$2" \
  '"  \($n)\texpires \(.attributes.exp | todate)\ttags \(.tags | tostring)"' | sed 's/\t/  /g'; }
say "portal: RSA, two names, expires 10 days from today, with a recipient and an owner tag:"
seed "$(jq -n --argjson nb $((now - 355 * day)) --argjson na $((now + 10 * day)) '{
  name: "portal", subject: "CN=portal.contoso.test, O=Contoso",
  sans: ["portal.contoso.test", "www.contoso.test"], key: {kty: "RSA", key_size: 2048},
  not_before: $nb, not_after: $na,
  tags: {Recipient: "alice@contoso.test; web-team@contoso.test", Owner: "web-team"}}')" portal
say "api: EC P-256, 300 days to go: nothing to do for a long while:"
seed "$(jq -n --argjson nb $((now - 65 * day)) --argjson na $((now + 300 * day)) '{
  name: "api", subject: "CN=api.contoso.test", sans: ["api.contoso.test"],
  not_before: $nb, not_after: $na, tags: {Recipient: "bob@contoso.test"}}')" api
say "edge: a 5-day certificate (from 4 days before today to 1 day after) of the CA's"
say "WebServerShort template, named by a tag since its issuer wrote no template extension:"
seed "$(jq -n --argjson nb $((now - 4 * day)) --argjson na $((now + 1 * day)) '{
  name: "edge", subject: "CN=edge.contoso.test", sans: ["edge.contoso.test"],
  not_before: $nb, not_after: $na,
  tags: {CertificateTemplate: "WebServerShort", Recipient: "carol@contoso.test"}}')" edge

# =============================================================================
act "Fast-forward 21 days: the vault raises NearExpiry, Event Grid queues it"
control PUT /control/clock "{\"advance_seconds\": $((21 * day))}" | jq -c '{now_iso}' | indent
queued() { [[ $(queue_count certlc) -ge 2 ]]; }
wait_for 20 "two NearExpiry messages in the queue" queued
say "The vault's events (GET /control/events), NearExpiry only:"
control GET '/control/events?after=0&max=1000' | jq -r '.events[].event
  | select(.eventType | endswith("NearExpiry"))
  | "  \(.eventTime[0:19])  \(.eventType)  \(.subject)  expires \(.data.EXP | todate)"'
say "(edge has lived inside the 30-day window from birth: its warning came at once.)"
say "One of the queue messages, as Event Grid wrote it (base64 of one event):"
peek certlc | sed -n 1p | jq -r '.text' | tee "$work/msg.b64" | cut -c1-72 | sed 's/$/.../' | indent
base64 -d <"$work/msg.b64" | jq -c '{eventType, subject, data: (.data | {VaultName, ObjectName, Version})}' | indent
say "certlc's view of the vault today (certlc kv list):"
show cl kv list 2>/dev/null | indent

# =============================================================================
act "The worker renews: certlc renew drains the queue once"
say "Per message: read the certificate and policy, choose CA and template, create a"
say "new version (issuer Unknown, the whole policy), send the vault's CSR to the CA,"
say "merge the chain, keep the tags, send the e-mail, log to Log Analytics, delete."
printf '%s$ certlc renew%s\n' "$c_bold" "$c_off"
set +e
cl renew >"$work/renew.out" 2>"$work/renew.log"
rc=$?
set -e
steps <"$work/renew.log"
indent <"$work/renew.out"
[[ $rc -eq 0 ]] || { cat "$work/renew.log" >&2; die "certlc renew exited $rc"; }
say "(The last line: edge's new 5-day version got its NearExpiry at once as well; certlc"
say "keeps that message hidden as a timer until a third of the lifetime is left.)"

# =============================================================================
act "The result in the vault"
versions() { cl kv --json versions "$1" 2>/dev/null | jq length; }
check "portal has a second version" test "$(versions portal)" -eq 2
check "edge has a second version" test "$(versions edge)" -eq 2
check "api was left alone (one version)" test "$(versions api)" -eq 1
show cl kv versions portal 2>/dev/null | indent
show cl kv show portal 2>/dev/null | grep -vE '^(policy|id|emails|upns|ips|ski|aki) ' | indent
cl kv --json show portal 2>/dev/null >"$work/portal.json"
check "same SANs, key type and subject as before" jq -e '.x509.dns_names == ["portal.contoso.test",
  "www.contoso.test"] and .x509.key_type == "RSA" and (.x509.subject | contains("CN=portal"))' \
  "$work/portal.json"
check "tags kept: Recipient and Owner" jq -e '.tags.Owner == "web-team"
  and (.tags.Recipient | startswith("alice@"))' "$work/portal.json"
check "new expiry about a year away (WebServer template)" \
  jq -e --argjson t $((now + 300 * day)) '.exp > $t' "$work/portal.json"
say "edge came back from the WebServerShort template, again for 5 days:"
cl kv versions edge 2>/dev/null | indent
check "edge's new version lives 5 days (the template decides)" jq -e \
  '(.exp - .nbf) > 4.9 * 86400 and (.exp - .nbf) < 5.1 * 86400' <(cl kv --json show edge 2>/dev/null)

# =============================================================================
act "The e-mail the recipients got (the emulator's mailbox API)"
mailbox '/messages?to=alice@contoso.test' >"$work/alice.json"
check "alice got one mail" jq -e '.count == 1' "$work/alice.json"
id=$(jq -r '.messages[0].id' "$work/alice.json")
mailbox "/messages/$id" >"$work/mail.json"
jq -r '"  From:    \(.from)\n  To:      \(.to_header)\n  Subject: \(.subject)\n"' "$work/mail.json"
jq -r '.text' "$work/mail.json" | indent
cl kv --json versions portal 2>/dev/null | jq -r '.[].version' >"$work/portal.versions"
check "it names the certificate and both versions" jq -e --rawfile v "$work/portal.versions" \
  '.text as $t | ($v | split("\n") | map(select(. != "")) | all(. as $x | $t | contains($x)))
   and ($t | contains("portal"))' "$work/mail.json"

# =============================================================================
act "The renewal log in Log Analytics (query API, KQL)"
q="CertlcRenewal_CL | where Certificate == 'portal' | order by TimeGenerated asc | project TimeGenerated, Step, Outcome, DurationMs, CaRequestId"
say "$q"
kql "$q" >"$work/kql.json"
kql_table <"$work/kql.json" | indent
check "a row per step: merged, and the recipients notified" jq -e '[.tables[0].rows[] | .[1:3]]
  | index([["merge", "ok"]]) != null and index([["notify", "ok"]]) != null' "$work/kql.json"
q="CertlcRenewal_CL | where Step == 'merge' and Outcome == 'ok' | summarize renewals = count() by Certificate"
say "$q"
kql "$q" | kql_table | indent

# =============================================================================
act "certlc serve: the webhook and the worker in one process"
say "In production Event Grid also calls certlc's HTTPS webhook, which wakes the worker"
say "at once (the work itself always comes from the queue). TLS certificate: the"
say "emulator's own server certificate; the shared secret goes in the URL."
sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$work/emu/server.pem" >"$work/webhook.pem"
sed -n '/BEGIN PRIVATE KEY/,/END PRIVATE KEY/p' "$work/emu/server.pem" >"$work/webhook.key"
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$work/webhook.secret"
jq --arg w "$work" '. + {webhook: {listen: "127.0.0.1", port: 0,
  certificate_file: "\($w)/webhook.pem", key_file: "\($w)/webhook.key",
  secret_file: "\($w)/webhook.secret"}}' "$work/certlc.json" >"$work/serve.json"
"$certlc_bin" --config "$work/serve.json" serve 2>"$work/serve.log" &
serve_pid=$!
listening() {
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "certlc serve exited"; }
  grep -q 'webhook.listening' "$work/serve.log"
}
wait_for 20 "certlc serve to listen" listening
port=$(sed -nE 's/.*webhook\.listening.* port=([0-9]+).*/\1/p' "$work/serve.log" | sed -n 1p)
[[ -n $port ]] || die "no port in certlc serve's log"
hook="https://127.0.0.1:$port"
ecurl "$hook/healthz" | jq -c . | indent
say "Subscribing it to the vault's topic (PUT /control/eventgrid/subscriptions/...):"
control PUT /control/eventgrid/subscriptions/certlc-webhook "$(jq -n \
  --arg url "$hook/api/events?code=$(cat "$work/webhook.secret")" '{topic: "certlc",
  destination: {type: "webhook", url: $url},
  filter: {included_event_types: ["Microsoft.KeyVault.CertificateNearExpiry"]},
  retry_policy: {max_delivery_attempts: 30, event_ttl_minutes: 1440},
  dead_letter: {account: "devstoreaccount1", container: "certlc-deadletter"}}')" >/dev/null
validated() {
  [[ $(control GET /control/eventgrid/subscriptions/certlc-webhook |
    jq -r .provisioning_state) == Succeeded ]]
}
wait_for 20 "the webhook's validation handshake" validated
ok "Event Grid validated the webhook (handshake answered by certlc serve)"

# =============================================================================
act "A fault: the CA is down while another certificate nears expiry"
control POST /control/faults '{"service": "ca", "count": 0, "status": 503, "retry_after": 60}' |
  jq -c . | indent
say "billing: 20 days left, so the vault warns at once -> queue + webhook -> worker:"
seed "$(jq -n --argjson nb $((now - 345 * day)) --argjson na $((now + 20 * day)) '{
  name: "billing", subject: "CN=billing.contoso.test", sans: ["billing.contoso.test"],
  not_before: $nb, not_after: $na, tags: {Recipient: "dave@contoso.test"}}')" billing
tried() { grep -q 'certificate=billing step=[a-z]* outcome=retry' "$work/serve.log"; }
# The webhook wakes the worker; should that ever race the queue message, the
# next wake-up (SIGUSR1, as the schedule would) picks it up.
for ((i = 0; i < 50; i++)); do tried && break; sleep 0.1; done
tried || { say "(no attempt yet: waking the worker with SIGUSR1)"; kill -USR1 "$serve_pid"; }
wait_for 30 "the worker's attempt on billing" tried
grep -E 'certificate=billing' "$work/serve.log" | steps
say "The message stays on the queue, hidden for the retry backoff (renew.retry_base_s, 60 s):"
control GET /control/state | jq -r --arg a "$storage_account" \
  '.queue[$a][] | "  queue \(.name): \(.messages) messages, \(.visible) visible"'
say "Instead of waiting, the emulator's clock moves 90 s on; the message is visible again,"
say "with its dequeue count and the renewal state certlc wrote into it (CA, template,"
say "the version being replaced, the last error):"
control PUT /control/clock '{"advance_seconds": 90}' >/dev/null
billing_msg() { peek certlc | jq -c 'select(.text | @base64d | fromjson | .event.subject == "billing")'; }
visible() { [[ -n $(billing_msg) ]]; }
wait_for 10 "billing's message to be visible again" visible
billing_msg >"$work/billing.msg"
jq -r '"  message \(.id)  dequeue count \(.dequeue_count)"' "$work/billing.msg"
jq -r .text "$work/billing.msg" | base64 -d | jq -c '.certlc | {ca, template, old, err}' | indent
check "dequeue count 1: one failed attempt, nothing lost" jq -e '.dequeue_count == 1' "$work/billing.msg"

# =============================================================================
act "The CA is back: the next drain renews billing"
control DELETE /control/faults >/dev/null
ok "fault removed"
say "certlc serve drains every renew.schedule_s, on each webhook delivery, and on SIGUSR1:"
printf '%s$ kill -USR1 <pid of certlc serve>%s\n' "$c_bold" "$c_off"
kill -USR1 "$serve_pid"
renewed() { [[ $(versions billing) -eq 2 ]]; }
finished() { grep -qE 'certificate=billing step=notify outcome=' "$work/serve.log"; }
wait_for 30 "billing's renewal (up to its e-mail)" finished
grep -E 'certificate=billing' "$work/serve.log" | steps | sed '1,/ retry /d'
say "(create 'resumed': the pending version of the failed attempt is reused: no second"
say "version, no second key, and the CA sees the same CSR.)"
check "billing renewed after the outage" renewed
mailed() { [[ $(mailbox '/messages?to=dave@contoso.test' | jq .count) -ge 1 ]]; }
check "dave got his mail" mailed
say "What the webhook's /metrics shows:"
ecurl "$hook/metrics" | grep -E '^certlc_(renewals_total|webhook_deliveries_total|up)' |
  grep -v ' 0$' | indent
say "Nothing was given up on, nothing dead-lettered (exit status 2: nothing there):"
for what in poison deadletter; do
  printf '%s$ certlc %s list%s\n' "$c_bold" "$what" "$c_off"
  set +e
  cl "$what" list 2>"$work/list.err" | indent
  rc=${PIPESTATUS[0]}
  set -e
  [[ $rc -eq 2 ]] || { cat "$work/list.err" >&2; die "certlc $what list exited $rc (expected 2)"; }
done

# =============================================================================
act "Stop everything"
kill -TERM "$serve_pid"
wait "$serve_pid" || die "certlc serve did not stop cleanly"
serve_pid=''
kill -TERM "$emu_pid"
wait "$emu_pid" || die "the emulator did not stop cleanly"
emu_pid=''
ok "certlc serve and the emulator stopped; temporary files removed on exit"
printf '\n%sDemo passed in %ds.%s What you saw:\n' "$c_bold" $((SECONDS - demo_t0)) "$c_off"
say "  - the vault warns 30 days ahead; Event Grid puts the warning on a Storage queue"
say "  - the worker renews from the queue: new version with the whole policy, the vault's"
say "    CSR to the CA, chain merged, tags kept, e-mail sent, every step in Log Analytics"
say "  - the CA down: the message waits with its state and comes back; nothing is lost"
say "    and nothing is done twice"
echo "Running it against Azure: docs/operations.md. Every key: docs/configuration.md."
