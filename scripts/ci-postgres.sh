#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the registry tests and print its URL on stdout.
#
#   export TOOLTUNE_TEST_PG_URL="$(scripts/ci-postgres.sh)"    # start (installs postgresql if missing)
#   scripts/ci-postgres.sh stop                                # stop it and delete its data
#
# Installs Debian's postgresql package when no server binaries are present (needs root or sudo).
# The server listens on 127.0.0.1 only, trusts local connections and keeps its data under
# $TOOLTUNE_PG_DIR (default /tmp/tooltune-ci-pg). The port is $TOOLTUNE_PG_PORT, or a free one.
# Everything but the URL goes to stderr.
set -euo pipefail

DIR="${TOOLTUNE_PG_DIR:-/tmp/tooltune-ci-pg}"
DB=tooltune_test
ROLE=tooltune

log() { echo "ci-postgres: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root (or sudo) to run: $*"; exit 1; fi
}

find_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

BINDIR="$(find_bindir)"
# initdb refuses to run as root: run the server as the postgres user when we are root.
RUN=()
if [ "$(id -u)" -eq 0 ]; then RUN=(runuser -u postgres --); fi

if [ "${1:-start}" = "stop" ]; then
    if [ -n "$BINDIR" ] && [ -f "$DIR/data/postmaster.pid" ]; then
        "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" -m fast stop >&2 || true
    fi
    rm -rf "$DIR"
    exit 0
fi

if [ -z "$BINDIR" ] || [ ! -x "$BINDIR/initdb" ]; then
    log "installing postgresql (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    BINDIR="$(find_bindir)"
fi

PORT="${TOOLTUNE_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"

# A server left over from an earlier run in the same directory is stopped and replaced.
if [ -f "$DIR/data/postmaster.pid" ]; then
    "${RUN[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" -m immediate stop >&2 || true
fi
rm -rf "$DIR"
mkdir -p "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$DIR"; fi

"${RUN[@]}" "$BINDIR/initdb" -D "$DIR/data" -U "$ROLE" -A trust -E UTF8 --no-sync >/dev/null
"${RUN[@]}" "$BINDIR/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off" start >&2 \
    || { cat "$DIR/server.log" >&2; exit 1; }
"${RUN[@]}" "$BINDIR/createdb" -h 127.0.0.1 -p "$PORT" -U "$ROLE" "$DB" >&2

log "PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT, database $DB"
echo "postgresql+psycopg://$ROLE@127.0.0.1:$PORT/$DB"
