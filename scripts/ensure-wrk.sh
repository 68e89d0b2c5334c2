#!/usr/bin/env bash
# `make bench` drives HTTP load with wrk (Debian's package). Install it when it is missing,
# bounded in time; say clearly what to do when this machine cannot.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bench: installing wrk (Debian package)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get install -y -q wrk >/dev/null 2>&1 ||
        { timeout 300 apt-get update -q >/dev/null 2>&1 && timeout 300 apt-get install -y -q wrk >/dev/null; }
fi
if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: ERROR: wrk is needed; install it (Debian/Ubuntu: apt-get install wrk)" >&2
    exit 1
fi
