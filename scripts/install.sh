#!/usr/bin/env bash
# Builds a release sluice and installs it with its shell completions and man page.
#
#   scripts/install.sh              into /usr/local when writable (root), else ~/.local
#   PREFIX=/opt/sluice scripts/install.sh
#
# The Swift runtime is linked statically where the toolchain allows (--static-swift-stdlib), so
# the binary needs only the system libraries (libpq, libsqlite3, snappy, zstd, zlib) at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${SLUICE_SETUP_DONE:-}" ] || source scripts/setup.sh

if [ -z "${PREFIX:-}" ]; then
    if [ -w /usr/local/bin ] || { [ "$(id -u)" -eq 0 ] && mkdir -p /usr/local/bin; }; then PREFIX=/usr/local; else PREFIX="$HOME/.local"; fi
fi

echo "==> building sluice in release mode (the first release build compiles every dependency and takes a while)"
filter() { grep -vE "'swift-distributed-tracing'|unhandled; explicitly" || true; }
if swift build -c release --product sluice --static-swift-stdlib 2>&1 | filter; [ "${PIPESTATUS[0]}" -eq 0 ]; then
    linkage="Swift runtime linked statically"
else
    echo "note: a static Swift runtime is not available here; linking it dynamically" >&2
    swift build -c release --product sluice 2>&1 | filter
    linkage="Swift runtime linked dynamically (the toolchain's libraries must stay installed)"
fi
BIN="$(swift build -c release --show-bin-path)/sluice"
[ -x "$BIN" ] || { echo "error: the release build failed; run 'swift build -c release' to see why" >&2; exit 1; }

install -d "$PREFIX/bin" "$PREFIX/share/man/man1" "$PREFIX/share/bash-completion/completions" \
    "$PREFIX/share/zsh/site-functions" "$PREFIX/share/fish/vendor_completions.d"
install -s -m 755 "$BIN" "$PREFIX/bin/sluice"   # stripped: 88 MB instead of 182
"$PREFIX/bin/sluice" --generate-completion-script bash > "$PREFIX/share/bash-completion/completions/sluice"
"$PREFIX/bin/sluice" --generate-completion-script zsh > "$PREFIX/share/zsh/site-functions/_sluice"
"$PREFIX/bin/sluice" --generate-completion-script fish > "$PREFIX/share/fish/vendor_completions.d/sluice.fish"
"$PREFIX/bin/sluice" --experimental-dump-help | python3 scripts/manpage.py "$("$PREFIX/bin/sluice" --version)" > "$PREFIX/share/man/man1/sluice.1"

echo "==> installed $("$PREFIX/bin/sluice" --version) ($linkage)"
echo "    binary       $PREFIX/bin/sluice"
echo "    man page     $PREFIX/share/man/man1/sluice.1   (man sluice)"
echo "    completions  bash, zsh and fish under $PREFIX/share"
case ":$PATH:" in
    *":$PREFIX/bin:"*) ;;
    *) echo "    note: $PREFIX/bin is not on your PATH; add it:  export PATH=\"$PREFIX/bin:\$PATH\"" ;;
esac
