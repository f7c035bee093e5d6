#!/bin/sh
# Runs the Node.js interop tests (node:test) against a fresh certlc-emulator:
# starts it with a private data dir, waits (bounded) for its endpoints file,
# runs `node --test`, stops it. Exit 77 (ctest SKIP) when node or the npm
# dependencies are missing (ci/test.sh runs `npm ci` here first).
# usage: run-node-test.sh /path/to/certlc-emulator [test files...]
set -u

EMU=${1:?usage: run-node-test.sh EMULATOR [TEST...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
[ $# -gt 0 ] || set -- "$HERE/identity.test.mjs"

if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed"
    exit 77
fi
NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$NODE_MAJOR" -lt 20 ]; then
    echo "SKIP: the pinned @azure/* SDKs need Node.js >= 20 (found $(node --version 2>/dev/null))"
    exit 77
fi
if [ ! -f "$HERE/node_modules/@azure/identity/package.json" ]; then
    echo "SKIP: npm dependencies missing (run 'npm ci' in $HERE)"
    exit 77
fi
if [ ! -x "$EMU" ]; then
    echo "FAIL: emulator binary '$EMU' not found or not executable"
    exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/certlc-interop.XXXXXX") || exit 1
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null
        # civetweb takes about 2 s to stop; give it 10 before KILL.
        i=0
        while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
            sleep 0.1
            i=$((i + 1))
        done
        kill -KILL "$PID" 2>/dev/null
        wait "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -m 700 "$TMP/data" || exit 1
"$EMU" --data-dir "$TMP/data" --endpoints-file "$TMP/endpoints.json" --quiet \
    >"$TMP/emulator.log" 2>&1 &
PID=$!

# The endpoints file is written atomically once every listener is up.
i=0
while [ ! -s "$TMP/endpoints.json" ]; do
    if ! kill -0 "$PID" 2>/dev/null; then
        echo "FAIL: the emulator exited before it was ready:"
        cat "$TMP/emulator.log"
        exit 1
    fi
    if [ $i -ge 300 ]; then
        echo "FAIL: no endpoints file after 30 s:"
        cat "$TMP/emulator.log"
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done

CA=$(node -e 'process.stdout.write(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).ca_bundle)' \
    "$TMP/endpoints.json") || exit 1

cd "$HERE" || exit 1
NODE_EXTRA_CA_CERTS="$CA" CERTLC_ENDPOINTS="$TMP/endpoints.json" CERTLC_DATA_DIR="$TMP/data" \
    node --test "$@"
rc=$?
if [ $rc -ne 0 ]; then
    echo "--- emulator log"
    tail -n 50 "$TMP/emulator.log"
fi
exit $rc
