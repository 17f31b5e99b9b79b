#!/usr/bin/env bash
# Starts a throwaway MariaDB server for the MySQL CDC tests and exports SLUICE_TEST_MYSQL_URL.
#
#   source scripts/mariadb-test-server.sh     # then: mariadb_test_server_stop (also run on exit by test.sh)
#
# mariadb-install-db into a temporary directory, loopback only, a free port, the binlog in ROW
# format with full row images and full table-map metadata (what `mysql_cdc` needs), GTIDs in
# strict mode, replicated changes logged too (a replica can stand in for its primary), a user
# `sluice` with the replication privileges. Never touches a running server.

MARIADB_TEST_BIN="${MARIADB_TEST_BIN:-/usr/sbin}"

mariadb_test_server_start() {
    [ -x "$MARIADB_TEST_BIN/mariadbd" ] || { echo "error: mariadbd not found in $MARIADB_TEST_BIN (apt-get install mariadb-server)" >&2; return 1; }
    MARIADB_TEST_DIR="$(mktemp -d -t sluice-mariadb.XXXXXX)"
    chmod 755 "$MARIADB_TEST_DIR"
    MARIADB_TEST_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
    echo "$MARIADB_TEST_PORT" > "$MARIADB_TEST_DIR/port"
    # Each server of a replication test has its own id (MARIADB_TEST_SERVER_ID, default 1).
    echo "${MARIADB_TEST_SERVER_ID:-1}" > "$MARIADB_TEST_DIR/server_id"
    # A self-signed certificate, so the TLS tests can use tls=require (plain connections still work).
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$MARIADB_TEST_DIR/server.key" \
        -out "$MARIADB_TEST_DIR/server.crt" >/dev/null 2>&1
    local user=()
    [ "$(id -u)" -eq 0 ] && user=(--user=root)
    # Each server has a temporary directory of its own: a server starting up removes the temporary
    # files it finds there, which breaks another one bootstrapping beside it in a shared /tmp.
    mkdir -p "$MARIADB_TEST_DIR/tmp"
    mariadb-install-db --no-defaults --datadir="$MARIADB_TEST_DIR/data" --tmpdir="$MARIADB_TEST_DIR/tmp" "${user[@]}" --auth-root-authentication-method=normal \
        --skip-test-db >"$MARIADB_TEST_DIR/install.log" 2>&1 || { cat "$MARIADB_TEST_DIR/install.log" >&2; return 1; }
    export MARIADB_TEST_DIR MARIADB_TEST_PORT
    mariadb_test_server_launch || return 1
    mariadb --no-defaults -uroot --socket="$MARIADB_TEST_DIR/sock" -e "
        DROP USER IF EXISTS ''@'localhost'; DROP USER IF EXISTS ''@'$(hostname)';
        CREATE USER sluice@'%' IDENTIFIED BY 'sluice';
        GRANT ALL PRIVILEGES ON *.* TO sluice@'%' WITH GRANT OPTION;
        CREATE DATABASE sluice_test;" || return 1
    export SLUICE_TEST_MYSQL_URL="mysql://sluice:sluice@127.0.0.1:$MARIADB_TEST_PORT/sluice_test"
    export SLUICE_TEST_MYSQL_SOCKET="$MARIADB_TEST_DIR/sock"
    echo "==> MariaDB $(mariadbd --version | awk '{print $3}') test server on 127.0.0.1:$MARIADB_TEST_PORT (data in $MARIADB_TEST_DIR)"
}

# Starts the server in $MARIADB_TEST_DIR on $MARIADB_TEST_PORT (after install, and after a pause).
mariadb_test_server_launch() {
    local user=()
    [ "$(id -u)" -eq 0 ] && user=(--user=root)
    # The server must not keep descriptors it inherits open (see pg-test-server.sh).
    (
        for fd in $(ls /proc/$BASHPID/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
        exec "$MARIADB_TEST_BIN/mariadbd" --no-defaults --datadir="$MARIADB_TEST_DIR/data" --tmpdir="$MARIADB_TEST_DIR/tmp" "${user[@]}" \
            --port="$MARIADB_TEST_PORT" --bind-address=127.0.0.1 --socket="$MARIADB_TEST_DIR/sock" \
            --pid-file="$MARIADB_TEST_DIR/pid" --log-error="$MARIADB_TEST_DIR/server.log" \
            --log-bin="$MARIADB_TEST_DIR/data/binlog" --server-id="$(cat "$MARIADB_TEST_DIR/server_id")" --log-slave-updates=ON --binlog-format=ROW --binlog-row-image=FULL \
            --binlog-row-metadata=FULL --gtid-strict-mode=ON --max-connections=200 --character-set-server=utf8mb4 \
            --ssl-cert="$MARIADB_TEST_DIR/server.crt" --ssl-key="$MARIADB_TEST_DIR/server.key" \
            --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 --innodb-buffer-pool-size=64M --skip-name-resolve \
            </dev/null >/dev/null 2>&1 &
    )
    local i
    for i in $(seq 1 120); do
        mariadb-admin --no-defaults -uroot --socket="$MARIADB_TEST_DIR/sock" ping >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    cat "$MARIADB_TEST_DIR/server.log" >&2
    return 1
}

# An outage, for the restart tests: stops the server (its data kept).
mariadb_test_server_pause() {
    mariadb-admin --no-defaults -uroot --socket="$MARIADB_TEST_DIR/sock" shutdown >/dev/null 2>&1 || true
}

# The end of the outage: the paused server starts again on its port.
mariadb_test_server_resume() {
    MARIADB_TEST_PORT="$(cat "$MARIADB_TEST_DIR/port")"
    mariadb_test_server_launch
}

mariadb_test_server_stop() {
    [ -n "${MARIADB_TEST_DIR:-}" ] && [ -d "$MARIADB_TEST_DIR/data" ] || return 0
    [ -f "$MARIADB_TEST_DIR/pid" ] && kill -9 "$(cat "$MARIADB_TEST_DIR/pid")" 2>/dev/null || true
    rm -rf "$MARIADB_TEST_DIR"
}

if [ -z "${SLUICE_TEST_MYSQL_URL:-}" ]; then
    mariadb_test_server_start
fi
