#!/usr/bin/env bash
# Builds the Debian package of chatserver with cargo-deb:
#   bash scripts/build-deb.sh            release build -> target/debian/*.deb
#   bash scripts/build-deb.sh dev        the debug build (what the package test uses)
# The man page is generated from the clap definition by the binary itself
# (`chatserver man DIR`) and packaged with it. Needs `cargo install cargo-deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
dir=release
if [ "$profile" = dev ]; then dir=debug; fi
target="${CARGO_TARGET_DIR:-target}"
cargo build -p chatserver --locked --profile "$profile"
mkdir -p "$target/$dir/man"
"$target/$dir/chatserver" man "$target/$dir/man" >/dev/null
gzip -9nf "$target/$dir/man/chatserver.1"
cargo deb -p chatserver --no-build --profile "$profile" --no-strip --fast --locked \
    --output "$target/debian"
