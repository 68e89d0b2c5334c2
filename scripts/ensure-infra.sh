#!/usr/bin/env bash
# Make sure PostgreSQL and RabbitMQ answer at the addresses the services will use.
#
#   CLIPMIX_DATABASE_URL  default postgresql://postgres@127.0.0.1:5432/clipmix
#   CLIPMIX_AMQP_URL      default amqp://guest:guest@127.0.0.1:5672/
#
# For each server: if it is ready, say so. If not and its host is local (127.0.0.1,
# localhost, ::1), start it; if the software is missing and we are root with apt-get,
# install it first (Debian packages `postgresql`, `rabbitmq-server`). A remote server
# that does not answer is an error. Every wait is bounded; exit 1 with a clear message.
# Idempotent and fast (well under 2 s) when both already run.
set -euo pipefail

DATABASE_URL="${CLIPMIX_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/clipmix}"
AMQP_URL="${CLIPMIX_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"

PG_START_TIMEOUT="${CLIPMIX_PG_START_TIMEOUT:-60}"        # seconds
RABBIT_START_TIMEOUT="${CLIPMIX_RABBIT_START_TIMEOUT:-90}" # seconds
APT_TIMEOUT="${CLIPMIX_APT_TIMEOUT:-900}"                 # seconds, per apt-get call

export DEBIAN_FRONTEND=noninteractive

say() { printf 'infra: %s\n' "$*"; }
warn() { printf 'infra: %s\n' "$*" >&2; }
die() {
    printf 'infra: ERROR: %s\n' "$*" >&2
    exit 1
}

# --- URL parsing -------------------------------------------------------------------
# parse_url URL DEFAULT_PORT -> sets URL_HOST, URL_PORT
parse_url() {
    local url="$1" default_port="$2" rest hostport
    rest="${url#*://}"      # drop scheme
    rest="${rest%%/*}"      # drop path
    rest="${rest%%\?*}"     # drop query
    hostport="${rest##*@}"  # drop user:password@
    if [[ "$hostport" == \[* ]]; then # [ipv6]:port
        URL_HOST="${hostport#\[}"
        URL_HOST="${URL_HOST%%\]*}"
        URL_PORT="${hostport##*\]}"
        URL_PORT="${URL_PORT#:}"
    elif [[ "$hostport" == *:* ]]; then
        URL_HOST="${hostport%%:*}"
        URL_PORT="${hostport##*:}"
    else
        URL_HOST="$hostport"
        URL_PORT=""
    fi
    [[ -n "$URL_HOST" ]] || URL_HOST=127.0.0.1
    [[ -n "$URL_PORT" ]] || URL_PORT="$default_port"
    [[ "$URL_PORT" =~ ^[0-9]+$ ]] || die "cannot read a port from '${url%%@*}@…' (got '$URL_PORT')"
}

is_local() {
    case "$1" in
    127.0.0.1 | localhost | ::1 | 127.*) return 0 ;;
    *) return 1 ;;
    esac
}

is_root() { [[ "$(id -u)" == 0 ]]; }

# tcp_open HOST PORT: a plain TCP connect, bounded to 2 s.
tcp_open() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

APT_UPDATED=0
apt_install() {
    is_root || return 1
    command -v apt-get >/dev/null 2>&1 || return 1
    if [[ "$APT_UPDATED" == 0 ]]; then
        say "apt-get update (bounded to ${APT_TIMEOUT}s)"
        timeout "$APT_TIMEOUT" apt-get update -qq || return 1
        APT_UPDATED=1
    fi
    say "apt-get install $* (bounded to ${APT_TIMEOUT}s)"
    timeout "$APT_TIMEOUT" apt-get install -y -qq --no-install-recommends "$@" || return 1
}

# --- PostgreSQL --------------------------------------------------------------------
pg_ready() {
    local host="$1" port="$2"
    tcp_open "$host" "$port" || return 1
    if command -v pg_isready >/dev/null 2>&1; then
        pg_isready -q -h "$host" -p "$port" -t 3 >/dev/null 2>&1
    else
        return 0 # no client tools here: the TCP connect is all we can check
    fi
}

# Print "VERSION CLUSTER PORT STATUS" lines for the local clusters (Debian layout).
pg_clusters() {
    command -v pg_lsclusters >/dev/null 2>&1 || return 0
    pg_lsclusters -h 2>/dev/null | awk '{print $1, $2, $3, $4}'
}

# Set local TCP auth to trust (development only) in a cluster's pg_hba.conf.
pg_trust_local() {
    local ver="$1" name="$2" hba
    hba="/etc/postgresql/$ver/$name/pg_hba.conf"
    [[ -f "$hba" ]] || return 0
    sed -E -i \
        -e 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1\/32[[:space:]]+)[^[:space:]]+/\1trust/' \
        -e 's/^(host[[:space:]]+all[[:space:]]+all[[:space:]]+::1\/128[[:space:]]+)[^[:space:]]+/\1trust/' \
        -e 's/^(local[[:space:]]+all[[:space:]]+postgres[[:space:]]+)[^[:space:]]+/\1trust/' \
        "$hba"
    say "DEVELOPMENT SETUP: set PostgreSQL $ver/$name to 'trust' auth for local connections ($hba)"
}

ensure_postgres() {
    local host port t0 fresh=0 ver name cport status chosen=""
    parse_url "$DATABASE_URL" 5432
    host="$URL_HOST" port="$URL_PORT"

    if pg_ready "$host" "$port"; then
        say "PostgreSQL is ready at $host:$port"
        return 0
    fi
    if ! is_local "$host"; then
        die "PostgreSQL at $host:$port does not answer (remote host: start it there, or point CLIPMIX_DATABASE_URL at a running server)"
    fi

    say "PostgreSQL does not answer at $host:$port; starting the local server"
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        if apt_install postgresql; then
            fresh=1
        else
            die "PostgreSQL is not installed and could not be installed here; install the Debian package 'postgresql' (as root: apt-get install postgresql), or point CLIPMIX_DATABASE_URL at a running server"
        fi
    fi

    # Pick the cluster that listens on the wanted port, else the newest one.
    while read -r ver name cport status; do
        [[ -n "${ver:-}" ]] || continue
        if [[ "$cport" == "$port" ]]; then
            chosen="$ver $name"
            break
        fi
        chosen="${chosen:-$ver $name}"
    done < <(pg_clusters | sort -r -V)

    if [[ -z "$chosen" ]]; then
        # Installed, but no cluster yet: create one on the wanted port.
        ver="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
        [[ -n "$ver" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql; install the Debian package 'postgresql'"
        command -v pg_createcluster >/dev/null 2>&1 || die "pg_createcluster missing; install the Debian package 'postgresql-common'"
        say "creating PostgreSQL cluster $ver/main on port $port"
        pg_createcluster --port "$port" "$ver" main >/dev/null || die "pg_createcluster $ver main failed"
        chosen="$ver main"
        fresh=1
    fi
    read -r ver name <<<"$chosen"
    cport="$(pg_clusters | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n {print $3}')"
    if [[ -n "$cport" && "$cport" != "$port" ]]; then
        die "no local PostgreSQL cluster is configured for port $port (cluster $ver/$name uses port $cport): use port $cport in CLIPMIX_DATABASE_URL, or change the cluster's port"
    fi
    if [[ "$fresh" == 1 ]]; then
        pg_trust_local "$ver" "$name"
    fi

    status="$(pg_clusters | awk -v v="$ver" -v n="$name" '$1 == v && $2 == n {print $4}')"
    if [[ "$status" == online* ]]; then
        if [[ "$fresh" == 1 ]]; then
            timeout 30 pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload >/dev/null 2>&1 || true
        fi
    else
        say "pg_ctlcluster $ver $name start"
        timeout 60 pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start ||
            die "could not start PostgreSQL $ver/$name (see /var/log/postgresql/postgresql-$ver-$name.log)"
    fi

    t0=$SECONDS
    until pg_ready "$host" "$port"; do
        if ((SECONDS - t0 >= PG_START_TIMEOUT)); then
            die "PostgreSQL $ver/$name did not become ready at $host:$port within ${PG_START_TIMEOUT}s (see /var/log/postgresql/postgresql-$ver-$name.log)"
        fi
        sleep 1
    done
    say "PostgreSQL is ready at $host:$port (started $ver/$name in $((SECONDS - t0))s)"
}

# A local server needs room for the test run's connections: two test processes (pytest-xdist),
# each with a suite of services (a pool per service), plus the bench smoke's own stack. Debian's
# default of 100 is not enough; raise it once (ALTER SYSTEM + restart) when it is lower.
PG_MIN_CONNECTIONS="${CLIPMIX_PG_MIN_CONNECTIONS:-300}"
ensure_pg_connections() {
    local host port have ver name
    parse_url "$DATABASE_URL" 5432
    host="$URL_HOST" port="$URL_PORT"
    is_local "$host" || return 0
    command -v psql >/dev/null 2>&1 || return 0
    have="$(timeout 10 psql -h "$host" -p "$port" -U postgres -d postgres -Atc 'SHOW max_connections' 2>/dev/null)" || return 0
    [[ "$have" =~ ^[0-9]+$ ]] || return 0
    ((have >= PG_MIN_CONNECTIONS)) && return 0
    read -r ver name < <(pg_clusters | awk -v p="$port" '$3 == p {print $1, $2; exit}')
    [[ -n "${ver:-}" ]] || {
        warn "max_connections is $have (< $PG_MIN_CONNECTIONS) and no local cluster on port $port to restart: the test run may run out of connections"
        return 0
    }
    say "raising PostgreSQL max_connections from $have to $PG_MIN_CONNECTIONS (restarts $ver/$name)"
    timeout 10 psql -h "$host" -p "$port" -U postgres -d postgres -qc "ALTER SYSTEM SET max_connections = $PG_MIN_CONNECTIONS" ||
        die "could not set max_connections"
    timeout 60 pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" restart ||
        die "could not restart PostgreSQL $ver/$name (see /var/log/postgresql/postgresql-$ver-$name.log)"
    local t0=$SECONDS
    until pg_ready "$host" "$port"; do
        ((SECONDS - t0 >= PG_START_TIMEOUT)) && die "PostgreSQL $ver/$name did not come back within ${PG_START_TIMEOUT}s"
        sleep 1
    done
}

# --- RabbitMQ ----------------------------------------------------------------------
# AMQP handshake: send the 0-9-1 protocol header, expect a method frame (type 1).
amqp_handshake() {
    local first
    # shellcheck disable=SC2016 # expanded by the inner bash
    first="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "AMQP\x00\x00\x09\x01" >&3
        head -c 1 <&3 | od -An -tx1
    ' "$1" "$2" 2>/dev/null)" || return 1
    [[ "${first//[[:space:]]/}" == "01" ]]
}

# rabbit_ready HOST PORT: TCP connect, then the local node's own start-up check
# (rabbitmqctl await_startup, bounded) or, when no local node manages the port
# (remote host, container), the AMQP handshake.
rabbit_ready() {
    local host="$1" port="$2"
    tcp_open "$host" "$port" || return 1
    if is_local "$host" && command -v rabbitmqctl >/dev/null 2>&1; then
        if timeout 15 rabbitmqctl -q -t 10 await_startup >/dev/null 2>&1; then
            return 0
        fi
    fi
    amqp_handshake "$host" "$port"
}

# Is a local RabbitMQ node running (perhaps still booting)?
rabbit_node_running() {
    command -v rabbitmqctl >/dev/null 2>&1 || return 1
    timeout 10 rabbitmqctl -q -t 5 ping >/dev/null 2>&1
}

ensure_rabbitmq() {
    local host port scheme t0
    scheme="${AMQP_URL%%://*}"
    if [[ "$scheme" == amqps ]]; then
        parse_url "$AMQP_URL" 5671
    else
        parse_url "$AMQP_URL" 5672
    fi
    host="$URL_HOST" port="$URL_PORT"

    if rabbit_ready "$host" "$port"; then
        say "RabbitMQ is ready at $host:$port"
        return 0
    fi
    if ! is_local "$host"; then
        die "RabbitMQ at $host:$port does not answer (remote host: start it there, or point CLIPMIX_AMQP_URL at a running broker)"
    fi

    say "RabbitMQ does not answer at $host:$port; starting the local broker"
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        apt_install rabbitmq-server ||
            die "RabbitMQ is not installed and could not be installed here; install the Debian package 'rabbitmq-server' (as root: apt-get install rabbitmq-server), or point CLIPMIX_AMQP_URL at a running broker"
    fi

    if rabbit_node_running; then
        say "a local RabbitMQ node is running; waiting for it to finish booting"
    elif tcp_open "$host" "$port" && amqp_handshake "$host" "$port"; then
        : # came up meanwhile (a package post-install may have started it)
    else
        say "rabbitmq-server -detached"
        timeout 60 rabbitmq-server -detached ||
            die "rabbitmq-server -detached failed (see /var/log/rabbitmq/)"
    fi

    t0=$SECONDS
    local booted_at=""
    until rabbit_ready "$host" "$port"; do
        if ((SECONDS - t0 >= RABBIT_START_TIMEOUT)); then
            die "RabbitMQ did not become ready at $host:$port within ${RABBIT_START_TIMEOUT}s (see /var/log/rabbitmq/)"
        fi
        # The node finished booting but nothing answers on host:port: waiting won't help.
        if [[ -z "$booted_at" ]] && timeout 15 rabbitmqctl -q -t 10 await_startup >/dev/null 2>&1; then
            booted_at=$SECONDS
        fi
        if [[ -n "$booted_at" ]] && ((SECONDS - booted_at >= 10)); then
            die "the local RabbitMQ node is running but does not accept AMQP on $host:$port (check its listeners, or fix CLIPMIX_AMQP_URL)"
        fi
        sleep 1
    done
    say "RabbitMQ is ready at $host:$port (took $((SECONDS - t0))s)"
}

# --- HAProxy (the public edge, services/edge) ----------------------------------------
# Only its binary: `make up` runs it under honcho with a rendered config. The package's own
# daemon is kept from starting (policy-rc.d 101) so it does not take a port.
ensure_haproxy() {
    command -v haproxy >/dev/null 2>&1 && return 0
    local policy=/usr/sbin/policy-rc.d own=0
    if is_root && [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own=1
    fi
    apt_install haproxy || true
    if [[ "$own" == 1 ]]; then rm -f "$policy"; fi
    command -v haproxy >/dev/null 2>&1 ||
        die "haproxy is missing (the public edge in front of the gateway): install Debian's 'haproxy'"
    say "HAProxy is installed ($(haproxy -v 2>/dev/null | head -n 1 | cut -d' ' -f1-3))"
}

ensure_postgres
ensure_pg_connections
ensure_rabbitmq
ensure_haproxy
