#!/bin/sh
# Starts Azurite's queue service (npm azurite, in memory, plain http) on a
# free 127.0.0.1 port, waits (bounded) until it listens, and prints
# "PID PORT" on stdout. The caller stops it with `kill PID`.
# Exit 77 when node or the npm package is missing (npm ci in this directory).
# usage: run-azurite.sh LOGFILE
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
LOG=${1:?usage: run-azurite.sh LOGFILE}
BIN="$HERE/node_modules/.bin/azurite-queue"
command -v node >/dev/null 2>&1 || { echo "SKIP: node is not installed" >&2; exit 77; }
[ -x "$BIN" ] || { echo "SKIP: azurite missing (run 'npm ci' in $HERE)" >&2; exit 77; }

PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});') || exit 1
"$BIN" --queueHost 127.0.0.1 --queuePort "$PORT" --inMemoryPersistence --skipApiVersionCheck \
    --loose --disableTelemetry --silent --extentMemoryLimit 64 >"$LOG" 2>&1 </dev/null &
PID=$!
i=0
while ! node -e 'const c=require("net").connect(+process.argv[1],"127.0.0.1");c.on("connect",()=>process.exit(0));c.on("error",()=>process.exit(1));' "$PORT" 2>/dev/null; do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "FAIL: azurite exited:" >&2
        cat "$LOG" >&2
        exit 1
    fi
    if [ $i -ge 100 ]; then
        echo "FAIL: azurite did not listen within 20 s" >&2
        kill "$PID" 2>/dev/null
        exit 1
    fi
    sleep 0.2
    i=$((i + 1))
done
echo "$PID $PORT"
