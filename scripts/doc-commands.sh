#!/usr/bin/env bash
# Runs every command that README.md and docs/benchmarks.md quote, in a short
# bounded form, so that a documented command cannot break unnoticed (a binary
# renamed, a flag removed, `cargo run` no longer knowing which binary to run).
#
# The list is not kept here: it is extracted from the documents themselves,
# so a newly documented command is covered automatically. A command is
#   - a line of a fenced code block (not rust/toml/json/text) or of an
#     indented code block, or
#   - an inline code span with at least one argument,
# whose program (after any VAR=value prefix) is `cargo`, `bash`, `taskset`
# or one of ours (`chat*`, `*bench`). Trailing `# comments`, `&` and the
# `[...]` around optional flags are dropped (the flags themselves are kept,
# so they must exist). Other programs (pulseaudio, export...) are not ours
# and are listed as skipped.
#
# How each kind is shortened. Everything runs on what `cargo test
# --workspace` already built, with the WORKSPACE's feature resolution: a
# `cargo ... -p X` resolves features for X alone, which rebuilt chatcore and
# much of its dependency tree once per package and cost CI minutes. So
# `cargo run -p X [--bin B | --example E]` runs target/debug/B (the package's
# `default-run` or only binary, read from `cargo metadata`, so an ambiguous
# `cargo run -p X` still fails here) or target/debug/examples/E, and
# `--release` is dropped (CI never makes a second, release build of the GUI):
#   cargo run/chatbench (load generator)  --clients 20 --duration 1 --drain 1
#                                         (and --big-room-clients 10 if set);
#                                         without --spawn-server it is pointed
#                                         at a server this script starts (a
#                                         TLS one with --tls, else a plain one)
#   cargo run --bin filebench             --size-mib 2
#   cargo run --bin voicebench            --members 2 --speakers 1 --duration 1
#   cargo run --bin storebench            --messages 20000 --memory-secs 1 --pages 50
#   cargo run -p chatserver / chatserver  started on free ports (127.0.0.1:0)
#                                         with a scratch --data-dir (a
#                                         documented --tls-cert/--tls-key
#                                         gets a self-signed pair), waited
#                                         for, stopped with SIGTERM, must exit
#                                         0 (`--help` runs as is)
#   cargo run -p chatclient-iced / GUI    its flags plus --help (no display
#                                         in CI; clap still refuses an
#                                         unknown flag)
#   cargo run --example chat              against this script's server, with
#                                         `/quit` on stdin
#   cargo run --example voice_latency     --secs 1 --runs 1
#   cargo run --example device_echo_latency  built only (needs a sound server)
#   cargo run --example record_message    as is, output into a temp dir
#   cargo run (other)                     as is, under a 120 s timeout
#   cargo bench -p X [--bench B]          cargo test --workspace --bench B for
#                                         each of X's [[bench]] targets (or
#                                         B): each criterion bench runs once
#                                         in test mode; `frames` with 100 10
#   cargo build ... --bin B               B must be built (the suite did)
#   cargo test -p X ... -- --nocapture    --workspace ... --no-run (the suite
#                                         runs them)
#   cargo doc -p X ... --open             cargo doc --workspace --no-deps
#   bash X.sh                             bash -n X.sh (syntax; it is long)
#   bash scripts/test.sh, bash .ci/run,
#   cargo fmt, cargo clippy               not run here: they are what runs
#                                         this script (.ci/run)
# A cargo command of any other kind fails the check until it gets a rule.
#
# Usage: bash scripts/doc-commands.sh [--list]   (--list: print, run nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

DOCS=(README.md docs/benchmarks.md)
LIMIT=120 # seconds any one command may take

# ------------------------------------------------------------- extraction

# Prints one command per line: FILE:LINE<TAB>COMMAND.
extract() {
    awk '
    function emit(file, line, cmd,    w, first) {
        gsub(/[ \t]+/, " ", cmd); sub(/^ /, "", cmd); sub(/ $/, "", cmd)
        sub(/ #.*$/, "", cmd)
        if (cmd == "") return
        w = cmd
        while (w ~ /^[A-Z_][A-Z0-9_]*=[^ ]* /) sub(/^[^ ]* /, "", w)
        first = w; sub(/ .*/, "", first)
        if (first ~ /^(cargo|bash|taskset)$/ || first ~ /^chat[a-z-]*$/ || first ~ /^[a-z]+bench$/)
            printf "%s:%d\t%s\n", file, line, cmd
        else if (inblock)
            printf "%s:%d\t#external %s\n", file, line, cmd
    }
    function spans(file, line, text,    s, m) {
        s = text
        while (match(s, /`[^`]+`/)) {
            m = substr(s, RSTART + 1, RLENGTH - 2)
            if (m ~ / /) { inblock = 0; emit(file, line, m) }
            s = substr(s, RSTART + RLENGTH)
        }
    }
    function flush() { if (para != "") spans(parafile, paraline, para); para = "" }
    FNR == 1 { flush(); fence = 0; indented = 0; prevblank = 1 }
    /^```/ {
        if (!fence) { flush(); fence = 1; lang = substr($0, 4); cont = "" }
        else fence = 0
        next
    }
    fence {
        if (lang ~ /^(rust|toml|json|text)/) next
        line = $0
        if (line ~ /\\$/) { sub(/\\$/, "", line); if (cont == "") contline = FNR; cont = cont line " "; next }
        if (cont != "") { line = cont line; cont = ""; inblock = 1; emit(FILENAME, contline, line); next }
        if (line ~ /^[ \t]*(#|$)/) next
        inblock = 1; emit(FILENAME, FNR, line); next
    }
    /^    [^ -]/ && (prevblank || indented) {
        flush(); indented = 1; prevblank = 0
        inblock = 1; emit(FILENAME, FNR, $0); next
    }
    /^[ \t]*$/ { flush(); prevblank = 1; indented = 0; next }
    {
        prevblank = 0; indented = 0
        if (para == "") { paraline = FNR; parafile = FILENAME }
        para = para " " $0
    }
    END { flush() }
    ' "${DOCS[@]}"
}

# ------------------------------------------------------------- running

TMP=$(mktemp -d)
SERVER_PID=""
PLAIN_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" 2>/dev/null || true; fi
    if [ -n "$PLAIN_PID" ]; then kill -TERM "$PLAIN_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# Starts target/debug/chatserver with "$@" plus free ports; sets STARTED_PID
# and STARTED_ADDR once it logs that it listens.
start_server() {
    local log="$TMP/server.$RANDOM.log"
    target/debug/chatserver "$@" 2>"$log" &
    STARTED_PID=$!
    for _ in $(seq 1 100); do
        if STARTED_ADDR=$(grep -o 'listening on [0-9.:]*' "$log" | awk '{print $3}') \
            && [ -n "$STARTED_ADDR" ]; then
            return 0
        fi
        if ! kill -0 "$STARTED_PID" 2>/dev/null; then break; fi
        sleep 0.1
    done
    cat "$log" >&2
    return 1
}

# Stops a server started by start_server; fails unless it exits 0.
stop_server() {
    kill -TERM "$1"
    wait "$1"
}

# The argument list with `--flag VALUE` set to VALUE (added if absent).
set_flag() {
    local flag=$1 value=$2 out=() found=0
    shift 2
    while (($#)); do
        if [ "$1" = "$flag" ]; then
            out+=("$flag" "$value"); shift 2; found=1
        else
            out+=("$1"); shift
        fi
    done
    ((found)) || out+=("$flag" "$value")
    printf '%s\n' "${out[@]}"
}

# Fills ARGS (an array) from a newline-separated list.
to_args() { mapfile -t ARGS < <(printf '%s\n' "$1" | sed '/^$/d'); }

# The arguments with `-p X` / `--package X` replaced by `--workspace` (once):
# the suite's own feature resolution, so nothing is rebuilt for one package.
workspace_wide() {
    local out=() ws=0
    while (($#)); do
        case "$1" in
            -p | --package) shift 2; ((ws)) || out+=(--workspace); ws=1 ;;
            *) out+=("$1"); shift ;;
        esac
    done
    printf '%s\n' "${out[@]}"
}

# The binary `cargo run -p PKG` runs, read from the package's Cargo.toml:
# its `default-run`, or its only binary (src/main.rs or one [[bin]]); empty
# when cargo would not know which to run either.
default_bin() {
    local manifest dir run bins=()
    manifest=$(grep -l "^name = \"$1\"" */Cargo.toml | head -n 1)
    [ -n "$manifest" ] || return 0
    dir=$(dirname "$manifest")
    run=$(sed -n 's/^default-run = "\(.*\)"/\1/p' "$manifest")
    if [ -n "$run" ]; then echo "$run"; return 0; fi
    [ -f "$dir/src/main.rs" ] && bins+=("$1")
    mapfile -t -O "${#bins[@]}" bins < <(sed -n '/^\[\[bin\]\]/,/^name/s/^name = "\(.*\)"/\1/p' "$manifest")
    for f in "$dir"/src/bin/*.rs; do [ -f "$f" ] && bins+=("$(basename "$f" .rs)"); done
    if ((${#bins[@]} == 1)); then echo "${bins[0]}"; fi
}

# The [[bench]] targets of package PKG (read from its Cargo.toml).
bench_names() {
    local manifest
    manifest=$(grep -l "^name = \"$1\"" */Cargo.toml | head -n 1)
    [ -n "$manifest" ] || return 0
    sed -n '/^\[\[bench\]\]/,/^name/s/^name = "\(.*\)"/\1/p' "$manifest"
}

# Shortens one documented command; prints "skip: why" or the command to run
# as one argument per line, first line the mode (run|server|build|stdin).
shorten() {
    local cmd=$1 words=() env=() prefix=()
    read -r -a words <<<"$cmd"
    while [[ ${words[0]} =~ ^[A-Z_][A-Z0-9_]*= ]]; do env+=("${words[0]}"); words=("${words[@]:1}"); done
    if [ "${words[0]}" = taskset ]; then prefix=("${words[@]:0:3}"); words=("${words[@]:3}"); fi
    # Drop --release, the `[ ]` of optional flags and a trailing `&`.
    local w clean=()
    for w in "${words[@]}"; do
        w=${w#[}; w=${w%]}
        [ "$w" = --release ] || [ "$w" = "&" ] || [ -z "$w" ] || clean+=("$w")
    done
    words=("${clean[@]}")
    local prog=${words[0]} sub=${words[1]:-}
    case "$prog $sub" in
        "bash scripts/test.sh" | "bash .ci/run" | "cargo fmt" | "cargo clippy")
            echo "skip: run by .ci/run itself"; return ;;
        "bash "*)
            printf '%s\n' run bash -n "${words[1]}"; return ;;
        "cargo build")
            # Built already (debug, the suite's features): the binaries it
            # names must exist.
            local bins=() i
            for ((i = 2; i < ${#words[@]}; i++)); do
                [ "${words[i]}" = --bin ] && bins+=("target/debug/${words[i+1]}")
            done
            printf '%s\n' run ls "${bins[@]:-target/debug}"; return ;;
        "cargo doc")
            printf '%s\n' run "${prefix[@]}" cargo doc --workspace --no-deps; return ;;
        "cargo test")
            local t=() ; for w in $(workspace_wide "${words[@]:2}"); do [ "$w" = -- ] && break; t+=("$w"); done
            printf '%s\n' run cargo test "${t[@]}" --no-run; return ;;
        "cargo bench")
            local rest=($(workspace_wide "${words[@]:2}"))
            # `--benches` would also run every library's unit tests (a
            # library is a bench target too): name the package's benches.
            if [[ " ${rest[*]} " != *" --bench "* ]]; then
                local b pkg=""
                for ((b = 2; b < ${#words[@]}; b++)); do
                    [[ ${words[b]} == -p || ${words[b]} == --package ]] && pkg=${words[b+1]}
                done
                rest=(--workspace)
                for b in $(bench_names "$pkg"); do rest+=(--bench "$b"); done
            fi
            if [[ " ${rest[*]} " == *" --bench frames "* ]]; then
                printf '%s\n' run "${prefix[@]}" cargo test "${rest[@]}" -- 100 10
            elif [[ " ${rest[*]} " == *" --bench "* ]]; then
                printf '%s\n' run "${prefix[@]}" cargo test "${rest[@]}"
            else
                printf '%s\n' run "${prefix[@]}" cargo test "${rest[@]}"
            fi
            return ;;
    esac
    # What program, and its own arguments.
    local pkg="" bin="" example="" args=() launcher=()
    if [ "$prog" = cargo ] && [ "$sub" = run ]; then
        local i=2
        while ((i < ${#words[@]})); do
            case "${words[i]}" in
                -p) pkg=${words[i+1]}; i=$((i + 2)) ;;
                --bin) bin=${words[i+1]}; i=$((i + 2)) ;;
                --example) example=${words[i+1]}; i=$((i + 2)) ;;
                --) args=("${words[@]:i+1}"); break ;;
                *) echo "fail: no rule for cargo run option ${words[i]}"; return ;;
            esac
        done
        if [ -n "$example" ]; then
            launcher=("target/debug/examples/$example")
        else
            if [ -z "$bin" ]; then
                bin=$(default_bin "$pkg")
                if [ -z "$bin" ]; then
                    echo "fail: cargo run -p $pkg does not name one binary to run"; return
                fi
            fi
            launcher=("target/debug/$bin")
        fi
    elif [ "$prog" = cargo ]; then
        echo "fail: no shortening rule for 'cargo $sub'"; return
    else
        bin=$prog; args=("${words[@]:1}"); launcher=("target/debug/$prog")
    fi
    local target=${example:-$bin} mode=run
    case "$target" in
        chatbench)
            local a; a=$(set_flag --clients 20 "${args[@]}")
            to_args "$a"; a=$(set_flag --duration 1 "${ARGS[@]}")
            to_args "$a"; a=$(set_flag --drain 1 "${ARGS[@]}")
            to_args "$a"
            # The big room must fit in the 20 clients (10 of them, the
            # other 10 in the small rooms beside it).
            if [[ " ${ARGS[*]} " == *" --big-room-clients "* ]]; then
                a=$(set_flag --big-room-clients 10 "${ARGS[@]}"); to_args "$a"
            fi
            if [[ " ${ARGS[*]} " == *" --tls "* ]]; then
                [[ " ${ARGS[*]} " == *" --spawn-server "* ]] \
                    || { a=$(set_flag --server "@SERVER@" "${ARGS[@]}"); to_args "$a"; }
            elif [[ " ${ARGS[*]} " != *" --spawn-server "* ]]; then
                # Plain load against the plain twin of the shared server.
                a=$(set_flag --server "@PLAIN@" "${ARGS[@]}"); to_args "$a"
            fi
            args=("${ARGS[@]}") ;;
        filebench)
            local a; a=$(set_flag --size-mib 2 "${args[@]}"); to_args "$a"; args=("${ARGS[@]}") ;;
        voicebench)
            local a; a=$(set_flag --members 2 "${args[@]}"); to_args "$a"
            a=$(set_flag --speakers 1 "${ARGS[@]}"); to_args "$a"
            a=$(set_flag --duration 1 "${ARGS[@]}"); to_args "$a"; args=("${ARGS[@]}") ;;
        storebench)
            local a; a=$(set_flag --messages 20000 "${args[@]}"); to_args "$a"
            a=$(set_flag --memory-secs 1 "${ARGS[@]}"); to_args "$a"
            a=$(set_flag --pages 50 "${ARGS[@]}"); to_args "$a"; args=("${ARGS[@]}") ;;
        chatserver)
            if [[ " ${args[*]} " != *" --help "* ]]; then
                mode=server
                local a; a=$(set_flag --listen 127.0.0.1:0 "${args[@]}"); to_args "$a"
                if [[ " ${ARGS[*]} " != *" --no-voice "* ]]; then
                    a=$(set_flag --voice-listen 127.0.0.1:0 "${ARGS[@]}"); to_args "$a"
                fi
                # Never the user's real data directory (TLS certificate).
                a=$(set_flag --data-dir "$TMP/data" "${ARGS[@]}"); to_args "$a"
                # A documented real certificate: the shared server's
                # self-signed pair stands in for it.
                if [[ " ${ARGS[*]} " == *" --tls-cert "* ]]; then
                    a=$(set_flag --tls-cert "$TMP/shared-data/tls/cert.pem" "${ARGS[@]}"); to_args "$a"
                    a=$(set_flag --tls-key "$TMP/shared-data/tls/key.pem" "${ARGS[@]}"); to_args "$a"
                fi
                args=("${ARGS[@]}")
            fi ;;
        chatclient-iced) args+=(--help) ;;
        chat)
            mode=stdin
            local a; a=$(set_flag --server "@SERVER@" "${args[@]}"); to_args "$a"
            a=$(set_flag --downloads "$TMP/downloads" "${ARGS[@]}"); to_args "$a"
            args=("${ARGS[@]}") ;;
        voice_latency) args+=(--secs 1 --runs 1) ;;
        device_echo_latency)
            printf '%s\n' build test -x "target/debug/examples/$target"; return ;;
        record_message)
            local out=() ; for w in "${args[@]}"; do
                if [[ $w == *.opus ]]; then out+=("$TMP/$(basename "$w")"); else out+=("$w"); fi
            done; args=("${out[@]}") ;;
    esac
    printf '%s\n' "$mode" "${env[@]/#/@ENV@}" "${prefix[@]}" "${launcher[@]}" "${args[@]}"
}

LIST=0
[ "${1:-}" = --list ] && LIST=1

mapfile -t LINES < <(extract)
if ((${#LINES[@]} == 0)); then
    echo "doc-commands: no command found in ${DOCS[*]}" >&2
    exit 1
fi

if ((!LIST)); then
    # What `cargo test --workspace` built is reused (same feature
    # resolution, so this builds only what tests do not need, such as the
    # bench binaries of chatbench).
    cargo build -q --locked --workspace --bins --examples
    # The shared server is what the documented `chatbench --server` runs
    # talk to: every client comes from 127.0.0.1, so the per-address caps
    # are raised as docs/benchmarks.md tells a benchmark operator to.
    printf 'max_connections_per_address = 1000\nmax_handshakes_per_address = 1000\n' \
        >"$TMP/bench-server.toml"
    # It serves TLS like a default server; the clients remember its
    # self-signed certificate in a scratch known-servers file, never the
    # user's (each run has a new certificate).
    export CHAT_KNOWN_SERVERS="$TMP/known_servers"
    start_server --listen 127.0.0.1:0 --no-voice --config "$TMP/bench-server.toml" \
        --data-dir "$TMP/shared-data"
    SERVER_PID=$STARTED_PID
    SERVER_ADDR=$STARTED_ADDR
    # Its plain twin (`--no-tls`), for documented plain load runs.
    start_server --listen 127.0.0.1:0 --no-voice --config "$TMP/bench-server.toml" \
        --data-dir "$TMP/plain-data" --no-tls
    PLAIN_PID=$STARTED_PID
    PLAIN_ADDR=$STARTED_ADDR
fi

declare -A DONE=()
failures=0
count=0
for entry in "${LINES[@]}"; do
    where=${entry%%$'\t'*}
    cmd=${entry#*$'\t'}
    if [[ $cmd == "#external "* ]]; then
        printf '%-28s skip (not a program of ours): %s\n' "$where" "${cmd#\#external }"
        continue
    fi
    plan=$(shorten "$cmd")
    case "$plan" in
        skip:* | fail:*)
            printf '%-28s %s: %s\n' "$where" "$plan" "$cmd"
            [[ $plan == fail:* ]] && failures=$((failures + 1))
            continue ;;
    esac
    mapfile -t P <<<"$plan"
    mode=${P[0]}
    envs=() run=()
    for w in "${P[@]:1}"; do
        if [[ $w == @ENV@* ]]; then envs+=("${w#@ENV@}"); else w=${w//@SERVER@/${SERVER_ADDR:-127.0.0.1:6789}}; run+=("${w//@PLAIN@/${PLAIN_ADDR:-127.0.0.1:6789}}"); fi
    done
    key="$mode ${envs[*]} ${run[*]}"
    if [ -n "${DONE[$key]:-}" ]; then
        printf '%-28s same as above: %s\n' "$where" "$cmd"
        continue
    fi
    DONE[$key]=1
    printf '%-28s %s\n%-28s -> %s%s\n' "$where" "$cmd" "" "${envs[*]:+${envs[*]} }" "${run[*]}"
    ((LIST)) && continue
    count=$((count + 1))
    log="$TMP/cmd.log"
    ok=1
    started=$SECONDS
    case "$mode" in
        run | build)
            # `cargo doc --workspace` checks every dependency (the GUI's
            # too) on a cold machine: work clippy then reuses, not a hang.
            limit=$LIMIT
            [[ "${run[*]}" == "cargo doc "* ]] && limit=900
            env "${envs[@]}" timeout "$limit" "${run[@]}" >"$log" 2>&1 </dev/null || ok=0 ;;
        stdin)
            printf '/quit\n' | env "${envs[@]}" timeout "$LIMIT" "${run[@]}" >"$log" 2>&1 || ok=0 ;;
        server)
            run=("${run[@]:1}")
            if ((ok)) && start_server "${run[@]}" 2>"$log"; then
                stop_server "$STARTED_PID" || ok=0
            else
                ok=0
            fi ;;
    esac
    printf '%-28s    %ss\n' "" "$((SECONDS - started))"
    if ((!ok)); then
        failures=$((failures + 1))
        echo "FAILED: $cmd" >&2
        tail -n 30 "$log" >&2
    fi
done

if ((LIST)); then exit 0; fi
stop_server "$SERVER_PID"
SERVER_PID=""
stop_server "$PLAIN_PID"
PLAIN_PID=""
if ((failures)); then
    echo "doc-commands: $failures documented command(s) failed" >&2
    exit 1
fi
echo "doc-commands: all $count distinct documented commands ran"
