#!/usr/bin/env bash
# Start the ClipMix suite in the background (honcho, one process group), wait until every
# service's /readyz answers 200, make sure a demo sandbox key exists, print how to use it.
#
#   scripts/up.sh            start (or find already running) and print the banner
#   scripts/up.sh --status   show whether it runs, its processes and each /readyz
#
# `make up` runs this after install, infra and migrate. Logs: .run/suite.log (each line
# prefixed by honcho with the process name); honcho's pid (= process group): .run/suite.pid.
# Stop with scripts/down.sh (`make down`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PROCFILE="${CLIPMIX_PROCFILE:-Procfile}"
RUN_DIR="${CLIPMIX_RUN_DIR:-$ROOT/.run}"
# Processes of each stateless service (`make up REPLICAS=2`): the edge balances the gateway
# replicas; the other services' replicas share the queues and the work tables.
REPLICAS="${CLIPMIX_REPLICAS:-1}"
REPLICATED=(gateway jobs billing webhooks status)
LOG="$RUN_DIR/suite.log"
PIDFILE="$RUN_DIR/suite.pid"
READY_TIMEOUT="${CLIPMIX_READY_TIMEOUT:-60}" # seconds until every /readyz answers 200
VENV_BIN="$ROOT/.venv/bin"

T0_NS="${MAKE_T0_NS:-$(date +%s%N)}"

export PATH="$VENV_BIN:$PATH"
export CLIPMIX_ENV="${CLIPMIX_ENV:-development}"
# Development only: lets a developer point a webhook endpoint at a local server (production: off).
export CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS="${CLIPMIX_WEBHOOKS_ALLOW_PRIVATE_TARGETS:-true}"
# The same for status webhooks (a subscription's URL on this machine).
export CLIPMIX_STATUS_ALLOW_PRIVATE_TARGETS="${CLIPMIX_STATUS_ALLOW_PRIVATE_TARGETS:-true}"
export PYTHONUNBUFFERED=1
# The public edge (HAProxy, services/edge) listens on the public port and refuses past the
# gateway's working slots; the gateway listens behind it. Other services call the gateway
# directly; customers' links (artifacts, the dashboard) name the edge.
export CLIPMIX_GATEWAY_PORT="${CLIPMIX_GATEWAY_PORT:-8088}"
export CLIPMIX_GATEWAY_URL="${CLIPMIX_GATEWAY_URL:-http://127.0.0.1:$CLIPMIX_GATEWAY_PORT}"
export CLIPMIX_EDGE_PORT="${CLIPMIX_EDGE_PORT:-8080}"
export CLIPMIX_EDGE_GATEWAY_URLS="${CLIPMIX_EDGE_GATEWAY_URLS:-$CLIPMIX_GATEWAY_URL}"
export CLIPMIX_PUBLIC_BASE_URL="${CLIPMIX_PUBLIC_BASE_URL:-http://127.0.0.1:$CLIPMIX_EDGE_PORT}"
# The edge adds the client's address to X-Forwarded-For before the gateway adds the edge's: the
# dashboard believes one proxy in front of the gateway (its per-address sign-in limit).
export CLIPMIX_DASHBOARD_TRUSTED_PROXY_HOPS="${CLIPMIX_DASHBOARD_TRUSTED_PROXY_HOPS:-1}"

say() { printf 'up: %s\n' "$*"; }
die() {
    printf 'up: ERROR: %s\n' "$*" >&2
    exit 1
}

elapsed() { # seconds since T0_NS, one decimal
    local now
    now="$(date +%s%N)"
    awk -v a="$T0_NS" -v b="$now" 'BEGIN {printf "%.1f", (b - a) / 1e9}'
}

# --- what runs where ----------------------------------------------------------------
default_port() {
    case "$1" in
    edge) echo 8080 ;;
    gateway) echo 8088 ;;
    jobs) echo 8081 ;;
    billing) echo 8082 ;;
    webhooks) echo 8083 ;;
    status) echo 8084 ;;
    dashboard) echo 8086 ;;
    mail) echo 8026 ;; # the dev mail sink's inbox over HTTP (its SMTP port: CLIPMIX_MAIL_SMTP_PORT, 8025)
    simulator) echo 8090 ;;
    *) echo "" ;;
    esac
}

# port_of NAME: CLIPMIX_<NAME>_PORT, else the SPEC default, else empty.
port_of() {
    local var
    var="CLIPMIX_$(tr '[:lower:]-' '[:upper:]_' <<<"$1")_PORT"
    if [[ -n "${!var:-}" ]]; then
        echo "${!var}"
    else
        default_port "$1"
    fi
}

# The host to probe: the bind host, with wildcard binds probed on loopback.
PROBE_HOST="${CLIPMIX_HOST:-127.0.0.1}"
case "$PROBE_HOST" in
"" | 0.0.0.0) PROBE_HOST=127.0.0.1 ;;
"::" | "[::]") PROBE_HOST=::1 ;;
esac
url_host() { if [[ "$PROBE_HOST" == *:* ]]; then echo "[$PROBE_HOST]"; else echo "$PROBE_HOST"; fi; }
BASE_HOST="$(url_host)"

[[ -f "$PROCFILE" ]] || die "no $PROCFILE in $ROOT"
# `make ps` (no REPLICAS given) shows what the running suite was started with.
if [[ "${1:-}" == "--status" && -z "${CLIPMIX_REPLICAS:-}" && -f "$RUN_DIR/replicas" ]]; then
    REPLICAS="$(tr -dc '0-9' <"$RUN_DIR/replicas")"
fi
[[ "$REPLICAS" =~ ^[1-9]$ ]] || die "REPLICAS (CLIPMIX_REPLICAS) must be a whole number from 1 to 9, got '$REPLICAS'"

# replica_port NAME N: replica N (2, 3, ...) of NAME listens 100*(N-1) above the first.
replica_port() { echo $(($(port_of "$1") + 100 * ($2 - 1))); }

if ((REPLICAS > 1)); then
    # A Procfile of our own: the project's, plus "<name>-<n>" lines for the extra replicas,
    # each told its port (CLIPMIX_<NAME>_<N>_PORT, so `make ps` finds it too).
    mkdir -p "$RUN_DIR"
    replicated="$RUN_DIR/Procfile.replicas"
    {
        printf '# Rendered by scripts/up.sh for REPLICAS=%s from %s: do not edit.\n' "$REPLICAS" "$PROCFILE"
        cat "$PROCFILE"
        for name in "${REPLICATED[@]}"; do
            upper="$(tr '[:lower:]' '[:upper:]' <<<"$name")"
            for ((n = 2; n <= REPLICAS; n++)); do
                var="CLIPMIX_${upper}_${n}_PORT"
                export "$var=${!var:-$(replica_port "$name" "$n")}"
                printf '%s-%s: env CLIPMIX_%s_PORT=$%s python -m services.%s\n' "$name" "$n" "$upper" "$var" "$name"
            done
        done
    } >"$replicated"
    PROCFILE="$replicated"
    for ((n = 2; n <= REPLICAS; n++)); do
        var="CLIPMIX_GATEWAY_${n}_PORT"
        CLIPMIX_EDGE_GATEWAY_URLS+=",http://$BASE_HOST:${!var}"
    done
fi
mapfile -t PROCESSES < <(grep -E '^[A-Za-z0-9_-]+:' "$PROCFILE" | cut -d: -f1)
((${#PROCESSES[@]} > 0)) || die "$PROCFILE lists no processes"

# "name=http://host:port" for every process with a known port.
TARGETS=()
for name in "${PROCESSES[@]}"; do
    port="$(port_of "$name")"
    if [[ -z "$port" ]]; then
        say "note: no port known for '$name' (set CLIPMIX_$(tr '[:lower:]-' '[:upper:]_' <<<"$name")_PORT); not waiting for it"
        continue
    fi
    TARGETS+=("$name=http://$BASE_HOST:$port")
done

# check_ready: one line "name:status ..." for services whose /readyz is not 200 yet;
# exit status 0 when all are ready. Each request is bounded to 2 s.
check_ready() {
    "$VENV_BIN/python" - "$@" <<'PY'
import os
import sys
import urllib.error
import urllib.request

from services.runtime.config import ServiceSettings

# The gateway answers /readyz only to the internal token (the others ignore the header).
token = os.environ.get("CLIPMIX_INTERNAL_TOKEN") or ServiceSettings.model_fields["internal_token"].default
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
opener.addheaders = [("X-ClipMix-Internal-Token", token)]
pending = []
for arg in sys.argv[1:]:
    name, base = arg.split("=", 1)
    try:
        with opener.open(base + "/readyz", timeout=2) as resp:
            status = str(resp.status)
    except urllib.error.HTTPError as exc:
        status = str(exc.code)
    except OSError as exc:
        reason = getattr(exc, "reason", exc)
        status = type(reason).__name__ if not isinstance(reason, str) else reason
    if status != "200":
        pending.append(f"{name}:{status}")
print(" ".join(pending))
sys.exit(1 if pending else 0)
PY
}

# --- pid file -----------------------------------------------------------------------
# running_pid: prints honcho's pid when the pid file names a live honcho process.
running_pid() {
    local pid
    [[ -f "$PIDFILE" ]] || return 1
    pid="$(tr -dc '0-9' <"$PIDFILE")"
    [[ -n "$pid" && "$pid" -gt 1 ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: it must be our honcho.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q honcho || return 1
    echo "$pid"
}

tail_log() {
    echo "----- last 40 lines of $LOG -----" >&2
    tail -n 40 "$LOG" >&2 2>/dev/null || true
    echo "-----" >&2
}

# --- status -------------------------------------------------------------------------
if [[ "${1:-}" == "--status" ]]; then
    if pid="$(running_pid)"; then
        echo "ClipMix suite: running (honcho pid $pid; logs in .run/suite.log)"
        # honcho and every descendant (each service runs in a session of its own), without
        # honcho's per-process helper forks.
        printf '  %7s %11s %6s  %s\n' PID ELAPSED RSS COMMAND
        ps -e -o pid=,ppid=,etime=,rss=,args= | awk -v root="$pid" '
            { n++; id[n] = $1; parent[$1] = $2; line[$1] = $0 }
            END {
                for (i = 1; i <= n; i++) {
                    p = id[i]; q = p
                    for (d = 0; d < 64 && q != "" && q > 1; d++) {
                        if (q == root) break
                        q = parent[q]
                    }
                    if (q != root) continue
                    $0 = line[p]
                    if (p != root && $0 ~ /bin\/honcho /) continue
                    pid = $1; et = $3; rss = sprintf("%.0fM", $4 / 1024)
                    $1 = $2 = $3 = $4 = ""; sub(/^ +/, "")
                    printf "  %7s %11s %6s  %s\n", pid, et, rss, $0
                }
            }'
    else
        echo "ClipMix suite: not running (no live pid in $PIDFILE)"
    fi
    if [[ -x "$VENV_BIN/python" ]]; then
        for target in "${TARGETS[@]}"; do
            name="${target%%=*}"
            if pending="$(check_ready "$target")"; then
                state="ready"
            else
                state="not ready (${pending#*:})"
            fi
            printf '  %-10s %-28s %s\n' "$name" "${target#*=}/readyz" "$state"
        done
    fi
    exit 0
fi

[[ -z "${1:-}" ]] || die "unknown argument '$1' (use --status, or nothing)"

# --- start --------------------------------------------------------------------------
[[ -x "$VENV_BIN/honcho" ]] || die "$VENV_BIN/honcho not found: run 'make up' (or 'make install' first)"
mkdir -p "$RUN_DIR"

if pid="$(running_pid)"; then
    say "the suite is already up (honcho pid $pid); not starting it twice"
else
    rm -f "$PIDFILE"
    # Something else on our ports would answer /readyz for us: refuse instead.
    for target in "${TARGETS[@]}"; do
        hostport="${target#*=http://}"
        port="${hostport##*:}"
        # shellcheck disable=SC2016 # expanded by the inner bash
        if timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$PROBE_HOST" "$port" 2>/dev/null; then
            die "port $port (${target%%=*}) is already in use on $PROBE_HOST; stop what holds it ($(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'users:.*' | head -n 1)) ('make down' if it is an old suite), or set CLIPMIX_$(tr '[:lower:]-' '[:upper:]_' <<<"${target%%=*}")_PORT"
        fi
    done

    [[ -f "$LOG" ]] && mv -f "$LOG" "$LOG.1"
    printf '===== suite started %s (CLIPMIX_ENV=%s) =====\n' "$(date -Is)" "$CLIPMIX_ENV" >"$LOG"
    # setsid: honcho and its children form their own process group (pgid = honcho's pid),
    # so down.sh can signal all of them at once; it outlives this script and the terminal.
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid bash -c 'echo "$$" >"$0"; exec honcho -f "$1" start' "$PIDFILE" "$PROCFILE" \
        >>"$LOG" 2>&1 </dev/null &
    for _ in $(seq 50); do # up to 5 s for the pid file
        [[ -s "$PIDFILE" ]] && break
        sleep 0.1
    done
    pid="$(tr -dc '0-9' <"$PIDFILE" 2>/dev/null || true)"
    [[ -n "$pid" ]] || die "honcho did not start (no pid in $PIDFILE)"
    echo "$REPLICAS" >"$RUN_DIR/replicas"
    say "started honcho (pid $pid): ${PROCESSES[*]}; logs in .run/suite.log"
fi

# --- wait for /readyz ---------------------------------------------------------------
deadline=$((SECONDS + READY_TIMEOUT))
pending=""
while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
        tail_log
        rm -f "$PIDFILE"
        die "the suite stopped during start-up (a process exited; honcho then stops them all). See the log above / $LOG"
    fi
    if pending="$(check_ready "${TARGETS[@]}")"; then
        break
    fi
    if ((SECONDS >= deadline)); then
        tail_log
        die "not ready after ${READY_TIMEOUT}s: ${pending:-?} (GET /readyz on each; 503 = Postgres or RabbitMQ not answering). The suite is still running: 'make logs', 'make ps', 'make down'"
    fi
    sleep 1
done
say "all ${#TARGETS[@]} services answer /readyz 200"

# --- demo key -----------------------------------------------------------------------
KEY="$("$VENV_BIN/python" scripts/demo_key.py)" || die "could not prepare the demo key (scripts/demo_key.py failed; see above)"
KEY="$(tail -n 1 <<<"$KEY")"
[[ -n "$KEY" ]] || die "scripts/demo_key.py printed no key"

GATEWAY="http://$BASE_HOST:$(port_of edge)"

# --- demo dashboard login -----------------------------------------------------------
# A person who owns the demo key's account (created once; its password set on every start).
DEMO_EMAIL="demo@clipmix.test"
DEMO_PASSWORD="clipmix-demo"
DEMO_ACCOUNT="$("$VENV_BIN/python" -c 'import json, sys; print(json.load(open(sys.argv[1])).get("account_id", ""))' "$RUN_DIR/demo.json" 2>/dev/null || true)"
"$VENV_BIN/clipmix-admin" dashboard demo-login --email "$DEMO_EMAIL" --password "$DEMO_PASSWORD" \
    ${DEMO_ACCOUNT:+--account "$DEMO_ACCOUNT"} >/dev/null 2>"$RUN_DIR/demo-login.err" ||
    { cat "$RUN_DIR/demo-login.err" >&2; die "could not prepare the demo dashboard login (clipmix-admin dashboard demo-login failed; see above)"; }
IDEM="demo-$(cat /proc/sys/kernel/random/uuid 2>/dev/null || date +%s%N)"

cat <<EOF

  ClipMix is up (CLIPMIX_ENV=$CLIPMIX_ENV) in $(elapsed) s
  public     $GATEWAY   (API: $GATEWAY/api/v1, through the edge; gateway behind it on :$(port_of gateway)$(for ((n = 2; n <= REPLICAS; n++)); do printf ' and :%s' "$(port_of "gateway-$n")"; done))
  services   $(for t in "${TARGETS[@]}"; do printf '%s :%s, ' "${t%%=*}" "${t##*:}"; done | sed 's/, $//')
  demo key   $KEY   (sandbox: never charges, answers completed jobs; kept in .run/demo.json)
  dashboard  $GATEWAY/dashboard   sign in as $DEMO_EMAIL / $DEMO_PASSWORD (or sign up)
  mail       what the suite mails lands in .run/mail/ (newest: .venv/bin/python -m services.mailsink latest)

  Try it:
    curl -s -X POST $GATEWAY/api/v1/music \\
      -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \\
      -H "Idempotency-Key: $IDEM" \\
      -d '{"prompt":"a lullaby for a rainy day","duration_seconds":30}'

  make logs   follow the logs (.run/suite.log)
  make ps     processes and readiness
  make down   stop everything

EOF
