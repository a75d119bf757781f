#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian/Ubuntu machine: installs the
# system packages the build and the tests need if any is missing, then runs
# every test of the workspace. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages needed by the build and the tests. The core, the daemon
# and the examples need none beyond a Rust toolchain and a C linker.
# - cpal (audio devices, in chatvoice) links ALSA: libasound2-dev, pkg-config.
# - opus builds libopus from source with cmake.
# - the desktop client's tests run iced's headless simulator (software
#   renderer, no display); the rest guard the X11 runtime libraries and a
#   font that iced loads on a minimal image. The global push-to-talk key's
#   test presses the key with xdotool on an Xvfb of its own.
# The voice tests use a committed speech fixture, so espeak-ng and sox are
# needed only to make a new one (see chatvoice/tests/fixtures/README.md).
PACKAGES=(
    pkg-config libasound2-dev cmake
    libxkbcommon-x11-0 libxcursor1 libxi6 libxrandr2 fonts-dejavu-core
    xvfb xdotool
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    echo "installing missing system packages: ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The Debian package test (chatserver/tests/package.rs) builds the package
# with cargo-deb; installing it takes about 50 s on 2 cores, once. Pinned:
# the test packages the debug build, which newer cargo-deb may refuse.
if ! cargo deb --version >/dev/null 2>&1; then
    echo "installing cargo-deb" >&2
    cargo install cargo-deb --version 3.8.0 --locked
fi

cargo test --workspace --locked "$@"
# The terminal client's own unit tests (an example is built as a normal
# program by the command above, which the integration tests run; built as a
# test harness it would not be, so its tests run separately).
# (--workspace: the feature resolution of the run above, so nothing is
# rebuilt for one package.)
cargo test --workspace --locked --example chat "$@"
# The package test: cargo-deb packages the debug build above, dpkg installs
# it into a scratch root, the unit's ExecStart serves a TLS login.
cargo test --workspace --locked --test package "$@" -- --ignored
# Every command README.md and docs/benchmarks.md quote, shortened (load
# generator 20 clients for 1 s, servers started and stopped, `--help` for the
# GUI...) and run with the debug builds above, so a documented command
# cannot break unnoticed. The rules are in the script.
bash scripts/doc-commands.sh
