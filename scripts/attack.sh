#!/usr/bin/env bash
# Builds the server and `chatattack` in release mode, then replays every
# attack of docs/security.md in sequence, each against a fresh server with
# its default limits on free loopback ports, each bounded by a timeout.
#
#   scripts/attack.sh                 # all scenarios, human summaries
#   scripts/attack.sh --json          # one JSON object per line
#   scripts/attack.sh voice-spoof     # only the named scenarios
#
# Loopback only. Run as root for the voice-spoof forged source (a raw
# socket); otherwise it stands in with a socket bound to 127.0.0.2.
set -euo pipefail
cd "$(dirname "$0")/.."

json=()
names=()
for arg in "$@"; do
    case "$arg" in
        --json) json=(--json) ;;
        *) names+=("$arg") ;;
    esac
done

cargo build --release -q -p chatserver -p chatbench --bin chatserver --bin chatattack
bin=target/release/chatattack
if ((${#names[@]} == 0)); then
    mapfile -t names < <("$bin" --list | awk '{print $1}')
fi

failed=0
for name in "${names[@]}"; do
    # Every scenario stops by itself in under a minute; the timeout is a
    # guard, and the tool kills its server when it ends.
    if ! timeout --kill-after=5 120 "$bin" --scenario "$name" --spawn-server "${json[@]}"; then
        echo "scenario $name failed or timed out" >&2
        failed=1
    fi
done
exit "$failed"
