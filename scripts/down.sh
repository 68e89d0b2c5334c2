#!/usr/bin/env bash
# Stop the suite started by scripts/up.sh (`make down`). Exit 0 when nothing runs.
#
# honcho runs in its own process group (pgid = the pid in .run/suite.pid) and starts each
# Procfile process in a session of its own. SIGTERM goes to honcho's group; honcho then
# SIGTERMs every service group and waits for them. After 15 s (CLIPMIX_STOP_TIMEOUT),
# everything still alive — honcho's group and each service group — gets SIGKILL. Service
# groups are found as honcho's descendants and, should honcho be gone already, from the
# "started (pid=N)" lines of .run/suite.log (checked to run in this directory).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${CLIPMIX_RUN_DIR:-$ROOT/.run}"
PIDFILE="$RUN_DIR/suite.pid"
LOG="$RUN_DIR/suite.log"
STOP_TIMEOUT="${CLIPMIX_STOP_TIMEOUT:-15}" # seconds between SIGTERM and SIGKILL

say() { printf 'down: %s\n' "$*"; }

if [[ ! -f "$PIDFILE" ]]; then
    say "the suite is not running (no .run/suite.pid)"
    exit 0
fi

leader="$(tr -dc '0-9' <"$PIDFILE")"
own_pgid="$(ps -o pgid= -p $$ | tr -dc '0-9')"
if [[ -z "$leader" || "$leader" -le 1 || "$leader" == "$own_pgid" ]]; then
    say "ignoring a bad pid file (.run/suite.pid: '$(head -c 40 "$PIDFILE")'); removed it"
    rm -f "$PIDFILE"
    exit 0
fi

# group_alive PGID: some process of the group runs (zombies don't count).
group_alive() {
    ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}
# honcho_alive: honcho itself runs (not a zombie), so it can stop its services.
honcho_alive() {
    local stat
    stat="$(ps -o stat= -p "$leader" 2>/dev/null || true)"
    [[ -n "$stat" && "$stat" != Z* ]]
}

# Every process group of the suite: honcho's, its descendants', and the services named in
# the log (when they still run in this directory — guards against reused pids).
suite_groups() {
    {
        echo "$leader"
        ps -e -o pid=,ppid=,pgid= | awk -v root="$leader" '
            { ppid[$1] = $2; pgid[$1] = $3 }
            END {
                for (p in ppid) {
                    q = p
                    for (i = 0; i < 64 && q != "" && q != 0 && q != 1; i++) {
                        if (q == root) { print pgid[p]; break }
                        q = ppid[q]
                    }
                }
            }'
        if [[ -f "$LOG" ]]; then
            grep -o 'started (pid=[0-9]*)' "$LOG" | tr -dc '0-9\n' | while read -r pid; do
                [[ -n "$pid" && "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$ROOT" ]] || continue
                ps -o pgid= -p "$pid" 2>/dev/null | tr -dc '0-9'
                echo
            done
        fi
    } | awk -v own="$own_pgid" 'NF && $1 > 1 && $1 != own && !seen[$1]++'
}

mapfile -t GROUPS_ < <(suite_groups)
alive=()
for g in "${GROUPS_[@]}"; do
    group_alive "$g" && alive+=("$g")
done
if ((${#alive[@]} == 0)); then
    say "the suite is not running (process group $leader is gone); removed the stale pid file"
    rm -f "$PIDFILE"
    exit 0
fi

say "stopping the suite (honcho pid $leader):"
ps -e -o pgid=,pid=,stat=,args= | awk -v list=" ${alive[*]} " 'index(list, " " $1 " ") && $3 !~ /^Z/ {
    $1 = ""; $3 = ""; sub(/^ /, ""); sub(/  /, " "); print "  " $0 }'

if honcho_alive; then
    kill -TERM -- "-$leader" 2>/dev/null || true # honcho stops the services itself
else
    for g in "${alive[@]}"; do # honcho is gone: signal the orphaned services directly
        kill -TERM -- "-$g" 2>/dev/null || true
    done
fi

any_alive() {
    local g
    for g in "${alive[@]}"; do
        group_alive "$g" && return 0
    done
    return 1
}

deadline=$((SECONDS + STOP_TIMEOUT))
while any_alive && ((SECONDS < deadline)); do
    sleep 0.2
done
if any_alive; then
    say "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
    for g in "${alive[@]}"; do
        kill -KILL -- "-$g" 2>/dev/null || true
    done
    for _ in $(seq 25); do # up to 5 s for the kernel to reap them
        any_alive || break
        sleep 0.2
    done
fi
rm -f "$PIDFILE"
if any_alive; then
    say "WARNING: some processes survived SIGKILL (groups: ${alive[*]})"
    exit 1
fi
say "stopped"
