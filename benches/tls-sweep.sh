#!/usr/bin/env bash
# The "Over TLS" experiments of docs/benchmarks.md, in one sweep: our server
# plain vs TLS (alternating, so both see the same machine), then ngircd plain
# vs TLS for context. Every chatbench run starts its own chatserver on a free
# loopback port (scratch data directory; --no-tls unless --tls) and stops it.
# Results: docs/data/tls-*.jsonl (one JSON object per run). About 10 minutes
# on 2 cores (ngircd needs about 2 minutes per run to take 1000 joins); run it
# on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p chatbench -p chatserver
bench=target/release/chatbench
out=docs/data
mkdir -p "$out"

run() { # file, then chatbench arguments
    local file=$1
    shift
    echo "chatbench $*" >&2
    timeout 600 "$bench" --spawn-server --json "$@" | tee -a "$out/$file"
}

# 1. 1000 clients x 1 msg/s for 10 s, plain and TLS alternating.
: > "$out/tls-1000.jsonl"
for _ in 1 2; do
    run tls-1000.jsonl --clients 1000 --rate 1 --duration 10
    run tls-1000.jsonl --clients 1000 --rate 1 --duration 10 --tls
done

# 2. Fan-out into 1000 members up to saturation (as fanout_1000.jsonl).
: > "$out/tls-fanout.jsonl"
for r in 4 8 12 16; do
    run tls-fanout.jsonl --clients 1000 --rate "$r" --duration 5
    run tls-fanout.jsonl --clients 1000 --rate "$r" --duration 5 --tls
done

# 3. Handshake storm: 10 000 clients log in at once, from 4 source addresses.
: > "$out/tls-storm.jsonl"
for _ in 1 2; do
    run tls-storm.jsonl --clients 10000 --messages 0 --sources 4
    run tls-storm.jsonl --clients 10000 --messages 0 --sources 4 --tls
done

# 4. ngircd under the same 1000-client load, plain and TLS.
: > "$out/tls-irc.jsonl"
IRCBENCH=target/release/ircbench bash scripts/irc-tls-bench.sh "$out/tls-irc.jsonl"
