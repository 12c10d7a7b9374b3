#!/usr/bin/env bash
# Start (or stop) a throwaway PostgreSQL server on 127.0.0.1:${PGPORT:-55432} for the warehouse test.
# Installs Debian's postgresql package when the machine lacks it (needs root, as in CI).
set -euo pipefail
PGPORT="${PGPORT:-55432}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/callreports-pg}"
action="${1:-start}"

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ "$action" = "stop" ]; then
  bin="$(find_bin)"; [ -n "$bin" ] && su postgres -s /bin/sh -c "$bin/pg_ctl -D $PGDATA_DIR stop -m fast" || true
  exit 0
fi

bin="$(find_bin)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "postgres.sh: installing PostgreSQL from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  bin="$(find_bin)"
fi

if su postgres -s /bin/sh -c "$bin/pg_ctl -D $PGDATA_DIR status" >/dev/null 2>&1; then
  echo "postgres.sh: already running on 127.0.0.1:$PGPORT"
  exit 0
fi
rm -rf "$PGDATA_DIR"
mkdir -p "$PGDATA_DIR"
chown postgres:postgres "$PGDATA_DIR"
su postgres -s /bin/sh -c "$bin/initdb -D $PGDATA_DIR -A trust -U postgres >/dev/null"
su postgres -s /bin/sh -c "$bin/pg_ctl -D $PGDATA_DIR -o '-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1' -l $PGDATA_DIR/server.log -w start >/dev/null"
echo "postgres.sh: PostgreSQL running on 127.0.0.1:$PGPORT (user postgres, trust auth)"
