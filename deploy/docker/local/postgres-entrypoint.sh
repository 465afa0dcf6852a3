#!/bin/sh
# The part of the official postgres image's entrypoint compose.yaml relies on: on an empty data
# directory, create the cluster with POSTGRES_USER / POSTGRES_PASSWORD, the database POSTGRES_DB, and
# run /docker-entrypoint-initdb.d/*.sql once; then run the server (`postgres -c ...` as given).
set -eu
: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "${1:-}" = "postgres" ]; then shift; fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
        echo "postgres: POSTGRES_PASSWORD is required to create the cluster" >&2
        exit 1
    fi
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    # initialise over the socket only, so nothing connects before the databases exist
    pg_ctl --pgdata="$PGDATA" --silent --wait -o "-c listen_addresses=" start
    if [ "$POSTGRES_DB" != "postgres" ]; then
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -q \
            -c "CREATE DATABASE \"$POSTGRES_DB\""
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        echo "postgres: running $script"
        psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -q -f "$script"
    done
    pg_ctl --pgdata="$PGDATA" --silent --wait -m fast stop
fi
exec postgres -D "$PGDATA" -c listen_addresses="*" "$@"
