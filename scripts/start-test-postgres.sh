#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on 127.0.0.1 for the back-office tests.
# Prints `export ...` lines to eval; stop it with: pg_ctl -D "$FIELDKIT_TEST_PGDATA" stop.
# Installs PostgreSQL with apt when run as root and it is missing.
set -euo pipefail
# A free loopback port unless one is given: a fixed one may already be taken (another cluster, a leftover run).
port=${1:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  else
    echo "start-test-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
fi
pgdata=$(mktemp -d /tmp/fieldkit-pg.XXXXXX)
run=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pgdata"
  run=(runuser -u postgres --)   # initdb refuses to run as root
fi
cd /   # the postgres user may not enter the caller's directory
"${run[@]}" "$pgbin/initdb" -D "$pgdata" -A trust -U postgres >/dev/null
"${run[@]}" "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
  -o "-p $port -k $pgdata -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
echo "export FIELDKIT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/postgres"
echo "export FIELDKIT_TEST_PGDATA=$pgdata"
echo "export FIELDKIT_TEST_PGBIN=$pgbin"
