#!/usr/bin/env bash
# Starts a throwaway PostgreSQL 15 server for the tests and exports SLUICE_TEST_PG_URL.
#
#   source scripts/pg-test-server.sh     # then: pg_test_server_stop (also run on exit by test.sh)
#
# initdb into a temporary directory, loopback only, a free port, wal_level=logical (the CDC tests
# reuse it), fsync off (tests only: the server is thrown away). Never touches a running cluster.

PG_TEST_BIN="${PG_TEST_BIN:-/usr/lib/postgresql/15/bin}"

close_inherited_fds() {
    local fd
    for fd in $(ls /proc/$BASHPID/fd); do
        [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
    done
    return 0
}

pg_test_server_start() {
    [ -x "$PG_TEST_BIN/initdb" ] || { echo "error: PostgreSQL 15 server binaries not found in $PG_TEST_BIN (apt-get install postgresql-15)" >&2; return 1; }
    PG_TEST_DIR="$(mktemp -d -t sluice-pg.XXXXXX)"
    chmod 755 "$PG_TEST_DIR"
    local as=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$PG_TEST_DIR"
        as=(runuser -u postgres --)
    fi
    # A self-signed certificate, so the TLS tests can use sslmode=require (plain connections still work).
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -keyout "$PG_TEST_DIR/server.key" \
        -out "$PG_TEST_DIR/server.crt" >/dev/null 2>&1
    chmod 600 "$PG_TEST_DIR/server.key"
    [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$PG_TEST_DIR/server.key" "$PG_TEST_DIR/server.crt"
    PG_TEST_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    (cd "$PG_TEST_DIR" && "${as[@]}" "$PG_TEST_BIN/initdb" -D "$PG_TEST_DIR/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 --no-sync --no-instructions >"$PG_TEST_DIR/initdb.log" 2>&1) \
        || { cat "$PG_TEST_DIR/initdb.log" >&2; return 1; }
    echo "$PG_TEST_PORT" > "$PG_TEST_DIR/port"
    pg_test_server_launch || return 1
    "$PG_TEST_BIN/psql" -X -q -h "$PG_TEST_DIR" -p "$PG_TEST_PORT" -U postgres -d postgres \
        -c "CREATE ROLE sluice LOGIN SUPERUSER REPLICATION PASSWORD 'sluice'" >/dev/null
    export PG_TEST_DIR PG_TEST_PORT
    export SLUICE_TEST_PG_CA="$PG_TEST_DIR/server.crt"
    export SLUICE_TEST_PG_URL="postgres://sluice:sluice@127.0.0.1:$PG_TEST_PORT/postgres"
    echo "==> PostgreSQL 15 test server on 127.0.0.1:$PG_TEST_PORT (data in $PG_TEST_DIR)"
}

# Starts the server in $PG_TEST_DIR on $PG_TEST_PORT (after initdb, and again after a pause).
pg_test_server_launch() {
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    # The server must not keep descriptors it inherits open (a parent that waits for their end,
    # such as Foundation's Process, would wait for the server's): the subshell closes them.
    (close_inherited_fds; cd "$PG_TEST_DIR" && "${as[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -l "$PG_TEST_DIR/server.log" -w -t 60 \
        -o "-p $PG_TEST_PORT -k $PG_TEST_DIR -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_replication_slots=20 \
            -c max_wal_senders=20 -c max_connections=200 -c fsync=off -c full_page_writes=off -c synchronous_commit=on \
            -c ssl=on -c ssl_cert_file=$PG_TEST_DIR/server.crt -c ssl_key_file=$PG_TEST_DIR/server.key" start >/dev/null) \
        || { cat "$PG_TEST_DIR/server.log" >&2; return 1; }
}

# An outage, for the chaos tests: stops the server (fast: clients are disconnected), keeping its data.
pg_test_server_pause() {
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    (cd "$PG_TEST_DIR" && "${as[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m fast -w stop >/dev/null)
}

# The end of the outage: the paused server starts again on its port.
pg_test_server_resume() {
    PG_TEST_PORT="$(cat "$PG_TEST_DIR/port")"
    pg_test_server_launch
}

pg_test_server_stop() {
    [ -n "${PG_TEST_DIR:-}" ] && [ -d "$PG_TEST_DIR/data" ] || return 0
    local as=()
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    (cd "$PG_TEST_DIR" && "${as[@]}" "$PG_TEST_BIN/pg_ctl" -D "$PG_TEST_DIR/data" -m immediate -w stop >/dev/null 2>&1) || true
    rm -rf "$PG_TEST_DIR"
}

if [ -z "${SLUICE_TEST_PG_URL:-}" ]; then
    pg_test_server_start
fi
