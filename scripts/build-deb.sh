#!/usr/bin/env bash
# Builds the Debian package of chatserver with cargo-deb:
#   bash scripts/build-deb.sh                 release build -> target/debian/*.deb
#   bash scripts/build-deb.sh dev             the debug build
#   bash scripts/build-deb.sh dev --no-build  package what is already built
#                                             (the package test does this)
# The man page is generated from the clap definition by the binary itself
# (`chatserver man DIR`) and packaged with it. Needs cargo-deb
# (`cargo install cargo-deb --version 3.8.0 --locked`; scripts/test.sh
# installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
build=yes
if [ "${2:-}" = --no-build ]; then build=no; fi
dir=release
if [ "$profile" = dev ]; then dir=debug; fi
target="${CARGO_TARGET_DIR:-target}"
if [ "$build" = yes ]; then
    cargo build -p chatserver --locked --profile "$profile"
fi
mkdir -p "$target/$dir/man"
"$target/$dir/chatserver" man "$target/$dir/man" >/dev/null
gzip -9nf "$target/$dir/man/chatserver.1"
# -q: cargo-deb warns that a dev-profile package is not for release, which
# is the point of the test's package.
cargo deb -p chatserver --no-build --profile "$profile" --no-strip --fast --locked -q \
    --output "$target/debian"
