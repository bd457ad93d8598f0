#!/bin/sh
# The official image's contract, in short: for `postgres`, initdb on first start with
# the superuser password from POSTGRES_PASSWORD_FILE and accept password logins from
# the network; any other command (psql, pg_isready, sh) just runs.
set -eu
if [ "$1" != postgres ]; then
    exec "$@"
fi
shift
bin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    "$bin/initdb" --username=postgres --pwfile="${POSTGRES_PASSWORD_FILE:?is required}" \
        --auth-local=scram-sha-256 --auth-host=scram-sha-256 -D "$PGDATA" >/dev/null
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
exec "$bin/postgres" -D "$PGDATA" "$@"
