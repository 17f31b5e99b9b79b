#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format.
#   scripts/format.sh          rewrite files in place
#   scripts/format.sh --check  change nothing; exit 1 and list what is not formatted
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests Package.swift)
if ! swift format --version >/dev/null 2>&1; then
    echo "error: swift-format is missing: it ships with Swift 6 toolchains (swift format --version)" >&2
    exit 1
fi
if [ "${1:-}" = "--check" ]; then
    if ! out="$(swift format lint --strict --recursive --configuration .swift-format "${paths[@]}" 2>&1)" || [ -n "$out" ]; then
        echo "$out" | head -40 >&2
        echo "error: $(echo "$out" | grep -c . || true) formatting problem(s); run scripts/format.sh and commit the result" >&2
        exit 1
    fi
    echo "formatting: ok"
else
    swift format format --in-place --recursive --configuration .swift-format "${paths[@]}"
fi
