#!/usr/bin/env bash
# The TypeScript SDK's tests (tests/e2e/test_sdk_js.py) need Node.js 18+ and npm. Install
# Debian's packages when they are missing, bounded in time; say what to do otherwise.
set -euo pipefail
ok() { command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(+process.versions.node.split(".")[0] >= 18 ? 0 : 1)'; }
if ok; then
    exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "node: installing Node.js and npm (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y -q nodejs npm >/dev/null 2>&1 ||
        { timeout 300 apt-get update -q >/dev/null 2>&1 &&
            timeout 600 apt-get install -y -q nodejs npm >/dev/null; }
fi
if ! ok; then
    echo "node: ERROR: Node.js 18+ and npm are needed for the TypeScript SDK's tests" >&2
    echo "      (install them, or set CLIPMIX_SKIP_JS=1 to skip those tests knowingly)" >&2
    [[ "${CLIPMIX_SKIP_JS:-}" == 1 ]] || exit 1
fi
