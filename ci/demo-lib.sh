# Helpers for ci/demo.sh (sourced, not run): headings and narration, checks
# that stop the demo with a clear message, bounded waits, and curl calls to the
# emulator (tokens from its Entra endpoint, control API, storage, mailbox,
# Log Analytics). Needs bash, jq, curl and coreutils only.
# Expects: $work (private temp dir), $ep (the emulator's endpoints file),
# $storage_account and $certlc_bin, set before it is sourced.
# shellcheck shell=bash
: "${work:?}" "${ep:?}" "${storage_account:?}" "${certlc_bin:?}"

# ---- presentation ----------------------------------------------------------

if [[ -t 1 ]]; then
  c_bold=$'\033[1m' c_dim=$'\033[2m' c_cyan=$'\033[36m' c_green=$'\033[32m'
  c_red=$'\033[31m' c_off=$'\033[0m'
else
  c_bold='' c_dim='' c_cyan='' c_green='' c_red='' c_off=''
fi
demo_act=0
demo_t0=$SECONDS

# A new act: number, title, and an optional pause for a live audience.
act() {
  demo_act=$((demo_act + 1))
  if [[ ${DEMO_PAUSE:-0} == 1 && $demo_act -gt 1 ]]; then
    read -r -p "${c_dim}(press Enter for act $demo_act)${c_off}" _ </dev/tty || true
  fi
  printf '\n%s━━ %d. %s %s[%ds]%s\n' "$c_bold" "$demo_act" "$*" "$c_dim" \
    $((SECONDS - demo_t0)) "$c_off"
}

# Narration: what is about to happen and why (wrapped by the caller).
say() { printf '%s%s%s\n' "$c_cyan" "$*" "$c_off"; }

# Shows a command as a reader would type it (paths shortened), then runs it.
# Output is indented; the exit status is the command's.
show() {
  local shown="$*"
  [[ $1 == cl ]] && shown="certlc ${shown#cl }"
  shown=${shown//"$certlc_bin"/certlc}
  shown=${shown//"$work"\//}
  printf '%s$ %s%s\n' "$c_bold" "$shown" "$c_off"
  "$@"
}

ok() { printf '%s✔ %s%s\n' "$c_green" "$*" "$c_off"; }

# Stops the demo: the EXIT trap cleans up, the exit status says it failed.
die() {
  printf '%s✘ demo failed: %s%s\n' "$c_red" "$*" "$c_off" >&2
  exit 1
}

# check DESCRIPTION CONDITION...: the condition is a command; fails the demo
# with the description when it does not hold.
check() {
  local what=$1
  shift
  "$@" >/dev/null || die "$what"
  ok "$what"
}

indent() { sed 's/^/    /'; }

# Reads certlc's log (key=value lines) and prints its renewal steps, one a
# line: certificate, step, outcome, duration, CA request id, error.
steps() {
  sed -nE 's/.*event=renew\.step vault=[^ ]+ certificate=([^ ]+) step=([^ ]+) outcome=([^ ]+) duration_ms=([0-9]+) request_id=("[^"]*"|[^ ]*) error=(.*)$/\1|\2|\3|\4|\5|\6/p' |
    while IFS='|' read -r cert step outcome ms req err; do
      req=${req//\"/} err=${err#\"} err=${err%\"}
      printf '    %-8s %-7s %-8s %5s ms%s%s\n' "$cert" "$step" "$outcome" "$ms" \
        "${req:+  CA request $req}" "${err:+  error: ${err:0:90}}"
    done
}

# ---- waiting ---------------------------------------------------------------

# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s, bounded.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local tries=$((limit * 5))
  for ((i = 0; i < tries; i++)); do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  die "timed out after ${limit}s waiting for: $what"
}

# ---- the emulator's endpoints ----------------------------------------------

epq() { jq -r "$1" "$ep"; }

# curl with the emulator's CA, failing on HTTP errors with the body shown.
ecurl() {
  local out status
  out=$(curl -sS --cacert "$(epq .ca_bundle)" --max-time 30 -w '\n%{http_code}' "$@") ||
    die "curl $*: no answer"
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [[ $status -ge 400 ]]; then
    printf '%s\n' "$out" >&2
    die "HTTP $status from ${*: -1}"
  fi
  printf '%s\n' "$out"
}

# token IDENTITY SCOPE: an access token from the emulated Entra ID (client
# credentials, exactly as any Azure client gets one). Fetched each time: the
# emulator's clock moves, and tokens expire by it.
token() {
  local id=$1 scope=$2
  ecurl "$(epq .services.entra)/$(epq .tenant)/oauth2/v2.0/token" \
    --data-urlencode grant_type=client_credentials \
    --data-urlencode "client_id=$(epq ".identities.$id.client_id")" \
    --data-urlencode "client_secret=$(epq ".identities.$id.client_secret")" \
    --data-urlencode "scope=$scope" | jq -r .access_token
}

# control METHOD PATH [JSON]: the emulator's control API as its admin.
control() {
  local method=$1 path=$2 body=${3:-}
  local tok
  tok=$(token admin api://certlc-emulator/.default)
  if [[ -n $body ]]; then
    ecurl -X "$method" -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
      --data-binary "$body" "$(epq .services.control)$path"
  else
    ecurl -X "$method" -H "Authorization: Bearer $tok" "$(epq .services.control)$path"
  fi
}

# storage METHOD SERVICE PATH: the emulated Storage queue or blob service
# with an Entra token (as `az storage ... --auth-mode login` does).
storage() {
  local method=$1 svc=$2 path=$3
  local tok
  tok=$(token admin https://storage.azure.com/.default)
  ecurl -X "$method" -H "Authorization: Bearer $tok" -H 'x-ms-version: 2021-12-02' \
    -H "x-ms-date: $(LC_ALL=C date -u '+%a, %d %b %Y %H:%M:%S GMT')" -H 'Content-Length: 0' \
    "$(epq ".services.$svc")/$storage_account$path"
}

# peek QUEUE: the visible messages as JSON lines {id, dequeue_count, text}
# (the XML answer parsed with sed: each field is one element on its own).
peek() {
  storage GET queue "/$1/messages?peekonly=true&numofmessages=32" |
    sed 's/<QueueMessage>/\n&/g' | sed -n 's/.*<MessageId>\([^<]*\)<.*<DequeueCount>\([0-9]*\)<.*<MessageText>\([^<]*\)<.*/\1 \2 \3/p' |
    while read -r id count text; do
      jq -cn --arg id "$id" --argjson n "$count" --arg t "$text" \
        '{id: $id, dequeue_count: $n, text: $t}'
    done
}

# Messages (visible or not) the emulator holds in QUEUE.
queue_count() {
  control GET /control/state |
    jq --arg a "$storage_account" --arg q "$1" \
      '[.queue[$a][]? | select(.name == $q) | .messages] | add // 0'
}

# kql QUERY: the Log Analytics query API, answered as a table.
kql() {
  local tok
  tok=$(token admin https://api.loganalytics.io/.default)
  ecurl -X POST -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
    --data-binary "$(jq -n --arg q "$1" '{query: $q}')" \
    "$(epq .services.logquery)/v1/workspaces/$(epq .log_analytics.workspace_id)/query"
}

# Renders a query answer (one table) as aligned text, with jq alone.
kql_table() {
  jq -r '.tables[0] | [[.columns[].name]] + [.rows[] | map(. // "-" | tostring)]
    | (transpose | map(map(length) | max)) as $w
    | .[] | [., $w] | transpose | map(.[0] + " " * (.[1] - (.[0] | length))) | join("  ")'
}

mailbox() { ecurl "$(epq .services.mailbox)$1"; }
