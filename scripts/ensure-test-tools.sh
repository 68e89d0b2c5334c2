#!/usr/bin/env bash
# The command-line tools `make test` runs besides Python and Node:
#   promtool  (Debian's `prometheus`)  checks deploy/prometheus' config, alert rules and their
#             rule tests (tests/unit/test_deploy_files.py)
#   wrk       (Debian's `wrk`)         drives the bench smoke test (tests/e2e/test_bench_smoke.py)
#   chromium  (Debian's `chromium`, with fonts-dejavu-core so pages have glyphs) the headless
#             browser of tests/browser (Playwright drives it; it never downloads a browser)
# and, with npm, tests/browser's pinned axe-core (package.json + package-lock.json, `npm ci`
# into tests/browser/node_modules): the accessibility check the browser tests inject.
#   haproxy   (Debian's `haproxy`)     the public edge in front of the gateway (services/edge,
#             tests/integration/test_edge.py); policy-rc.d keeps its packaged daemon stopped
# Install what is missing when we are root with apt-get, every apt call bounded in time; say
# what to install otherwise. Never fails `make test` itself: a test that needs a missing tool
# skips, or under CI=true fails (tests/tools.py), so a broken install shows as that test.
# Fast (a few ms) when all are present.
set -euo pipefail

APT_TIMEOUT="${CLIPMIX_APT_TIMEOUT:-600}" # seconds, per apt-get call
export DEBIAN_FRONTEND=noninteractive

# tool -> Debian package
declare -A PACKAGE=([promtool]=prometheus [wrk]=wrk [haproxy]=haproxy [chromium]="chromium fonts-dejavu-core")

missing() {
    local tool
    for tool in "${!PACKAGE[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || printf '%s\n' "$tool"
    done | sort
}

# tests/browser's axe-core, exactly as its lock file says (fast when already there).
BROWSER_TOOLS="$(cd "${BASH_SOURCE[0]%/*}/../tests/browser" && pwd)"
if [[ ! -f "$BROWSER_TOOLS/node_modules/axe-core/axe.min.js" ]]; then
    if command -v npm >/dev/null 2>&1; then
        echo "test-tools: installing tests/browser's axe-core (npm ci)"
        (cd "$BROWSER_TOOLS" && timeout "$APT_TIMEOUT" npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
            echo "test-tools: npm ci in tests/browser failed: the browser tests' accessibility check will fail" >&2
    else
        echo "test-tools: npm is missing: tests/browser's axe-core cannot be installed" >&2
    fi
fi

mapfile -t need < <(missing)
if ((${#need[@]} == 0)); then
    exit 0
fi
packages=()
# shellcheck disable=SC2206 # a tool may need several packages (chromium and its fonts)
for tool in "${need[@]}"; do packages+=(${PACKAGE[$tool]}); done

if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "test-tools: installing ${packages[*]} (Debian packages, bounded to ${APT_TIMEOUT}s per call)"
    # --no-install-recommends: promtool only, not the exporters and web assets Prometheus suggests
    # (and chromium without the desktop's extras).
    # policy-rc.d 101: a package's daemon is not started (we need its binary, not a server).
    policy="${CLIPMIX_POLICY_RC_D:-/usr/sbin/policy-rc.d}"
    own_policy=0
    if [[ ! -e "$policy" ]]; then
        { printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1; } 2>/dev/null || true
    fi
    apt_install() {
        timeout "$APT_TIMEOUT" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    }
    # The package lists may be stale or absent on a fresh machine: update once, then retry.
    apt_install 2>/dev/null || { timeout "$APT_TIMEOUT" apt-get update -qq >/dev/null && apt_install; } || true
    if [[ "$own_policy" == 1 ]]; then rm -f "$policy"; fi
fi

mapfile -t need < <(missing)
if ((${#need[@]} == 0)); then
    exit 0
fi
for tool in "${need[@]}"; do
    echo "test-tools: $tool is missing: install Debian's '${PACKAGE[$tool]}' (apt-get install ${PACKAGE[$tool]})" >&2
done
if [[ "${CI:-}" == true ]]; then
    echo "test-tools: ERROR: CI=true: the tests needing them will FAIL (every test must run in CI)" >&2
else
    echo "test-tools: the tests needing them will be skipped (under CI=true they fail)" >&2
fi
