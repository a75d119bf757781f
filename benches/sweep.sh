#!/usr/bin/env bash
# Runs the load-generator experiments of docs/benchmarks.md and plots them.
# Every run starts its own chatserver on a free loopback port and stops it.
# Results: docs/data/*.jsonl (one JSON object per run), plots: docs/*.png.
# Takes about 10 minutes on 2 cores. Run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release -q -p chatbench -p chatserver
bench=target/release/chatbench
plot=target/release/plot
out=docs/data
mkdir -p "$out"

run() { # file, then chatbench arguments
    local file=$1
    shift
    echo "chatbench $*" >&2
    "$bench" --spawn-server --json "$@" | tee -a "$out/$file"
}

# 1. The original experiment, and how it scales: 1 message/s per client.
: > "$out/per_client_rate.jsonl"
for n in 100 200 500 1000 2000; do
    run per_client_rate.jsonl --clients "$n" --rate 1 --duration 10
done

# 2. A busy room of growing size: 100 messages/s in total.
: > "$out/fixed_total_rate.jsonl"
for n in 100 300 1000 3000 10000; do
    rate=$(python3 -c "print(100/$n)")
    run fixed_total_rate.jsonl --clients "$n" --rate "$rate" --duration 10
done

# 3. Fan-out into a 1000-member room, offered load up to and past saturation.
: > "$out/fanout_1000.jsonl"
for r in 1 2 4 8 12 16 24 32; do
    run fanout_1000.jsonl --clients 1000 --rate "$r" --duration 5
done

# 4. Connection storm: 10 000 clients log in at once.
: > "$out/storm.jsonl"
for i in 1 2 3; do
    run storm.jsonl --clients 10000 --messages 0
done

# 5. Idle connections: memory per connection near the descriptor limit.
: > "$out/idle.jsonl"
run idle.jsonl --clients 19000 --messages 0

"$plot" --input "$out/per_client_rate.jsonl" --x clients --output docs/latency_vs_clients.png \
    --title "1 msg/s per client: delivery latency and deliveries/s vs clients"
"$plot" --input "$out/fixed_total_rate.jsonl" --x clients --output docs/latency_vs_clients_fixed_rate.png \
    --title "100 msg/s in total: delivery latency and deliveries/s vs clients"
"$plot" --input "$out/fanout_1000.jsonl" --x offered --output docs/latency_vs_offered_load.png \
    --title "1000-member room: latency and deliveries/s vs offered deliveries/s"
