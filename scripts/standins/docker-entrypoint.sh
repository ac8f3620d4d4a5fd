#!/bin/sh
# The stand-in Postgres image's entrypoint (scripts/standin-images): the part of the official
# postgres image's contract that facerec's compose file and README use. On the first start of an
# empty PGDATA it creates POSTGRES_USER (a superuser) with POSTGRES_PASSWORD and the database
# POSTGRES_DB, trusting local socket connections and requiring scram-sha-256 over TCP; then it
# runs the server as the `postgres` user, as PID 1, with whatever `postgres -c ...` it is given.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
    exec "$@"
fi

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$(dirname "$PGDATA")"
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?is required: the stand-in, like the official image, refuses to start without it}"
    POSTGRES_USER="${POSTGRES_USER:-postgres}"
    POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$pwfile"
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        # A server on a private socket only: nothing (pg_isready included) sees it before the
        # database exists.
        socket_dir="$(mktemp -d)"
        pg_ctl --pgdata="$PGDATA" --wait --silent \
            --options="-c listen_addresses='' -c unix_socket_directories='$socket_dir'" start
        psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --host="$socket_dir" --username="$POSTGRES_USER" --dbname=postgres \
            --set=db="$POSTGRES_DB" <<'SQL'
CREATE DATABASE :"db";
SQL
        pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop
        rmdir "$socket_dir"
    fi
    echo "stand-in entrypoint: initialised $PGDATA for user $POSTGRES_USER, database $POSTGRES_DB"
fi

exec "$@"
