#!/usr/bin/env bash
# Context figure for docs/benchmarks.md, "Over TLS": ngircd under the load of
# `chatbench` (CLIENTS clients x RATE msg/s each for DURATION s in one
# channel), plain and over TLS, measured by `ircbench` on loopback.
#
#   bash scripts/irc-tls-bench.sh [OUT.jsonl]
#
# Needs `ngircd` and `openssl` on PATH (Debian: apt-get install ngircd
# openssl). Everything it makes (config, throwaway self-signed certificate,
# pid file) lives in a temporary directory removed at the end; ngircd is
# started in the foreground on 127.0.0.1 high ports and stopped by its pid.
# With OUT given, each run's JSON line is appended to it. CLIENTS, RATE,
# DURATION (environment) change the load; IRCBENCH names a prebuilt driver.
#
# ngircd's limits raised for a fair comparison (our server runs with its
# flood limits and per-address caps lifted in the same way):
#   MaxConnections = 0, MaxConnectionsIP = 0   no cap on connections
#   MaxJoins = 0                               (one channel is used anyway)
#   MaxPenaltyTime = 0                         penalties (flood throttling) off
#   PingTimeout/PongTimeout = 600              no PING rounds during a run
#   DNS = no, Ident = no, PAM = no             no lookups per connection
set -euo pipefail
cd "$(dirname "$0")/.."

CLIENTS=${CLIENTS:-1000}
RATE=${RATE:-1}
DURATION=${DURATION:-10}
out=${1:-}

for tool in ngircd openssl; do
    command -v "$tool" > /dev/null || { echo "$tool is not installed" >&2; exit 1; }
done
bench=${IRCBENCH:-}
if [ -z "$bench" ]; then
    cargo build --release -q -p chatbench --bin ircbench
    bench=target/release/ircbench
fi

dir=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null; then
        kill "$pid"
        wait "$pid" 2> /dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
plain_port=$(free_port)
tls_port=$(free_port)

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2> /dev/null

cat > "$dir/ngircd.conf" << EOF
[Global]
Name = bench.irc.invalid
Info = throwaway ngircd for ircbench
Listen = 127.0.0.1
Ports = $plain_port
PidFile = $dir/ngircd.pid
MotdPhrase = bench
[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600
[Options]
DNS = no
Ident = no
PAM = no
[SSL]
CertFile = $dir/cert.pem
KeyFile = $dir/key.pem
Ports = $tls_port
EOF

ulimit -n "$(ulimit -Hn)"
ngircd --nodaemon --config "$dir/ngircd.conf" > "$dir/ngircd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    if (exec 3<> "/dev/tcp/127.0.0.1/$tls_port") 2> /dev/null; then break; fi
    sleep 0.1
done
kill -0 "$pid" || { cat "$dir/ngircd.log" >&2; exit 1; }
echo "$(ngircd --version | head -1)" >&2

run() { # then ircbench arguments
    echo "ircbench $*" >&2
    local line
    line=$(timeout 600 "$bench" --clients "$CLIENTS" --rate "$RATE" --duration "$DURATION" \
        --login-timeout 400 --server-pid "$pid" --json "$@")
    echo "$line"
    if [ -n "$out" ]; then echo "$line" >> "$out"; fi
}

run --server "127.0.0.1:$plain_port"
run --server "127.0.0.1:$tls_port" --tls
