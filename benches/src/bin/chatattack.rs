//! `chatattack`: replays the attacks of the hardening issue against a real
//! server, so that each limit is proven by a run and not only by a unit test.
//!
//! ```text
//! cargo run --release -p chatbench --bin chatattack -- --scenario offer-flood --spawn-server
//! cargo run --release -p chatbench --bin chatattack -- --list
//! ```
//!
//! Each scenario is bounded in count and time and stays on loopback. While
//! it runs, an honest member (the probe) chats every 100 ms and measures the
//! round trip of its own messages, and the server's memory, descriptors and
//! CPU are sampled from /proc: what the other members saw. With
//! `--spawn-server` the server is `chatserver` from the same build profile,
//! on free loopback ports, with its default limits and a temporary spool
//! directory; docs/security.md records the figures.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chatbench::attack::scenarios::{self, SCENARIOS, Scale};
use chatbench::attack::{Probe, Sampler, Target, raise_fd_limit};
use clap::Parser;
use serde_json::{Value, json};

/// Replays a hostile user's attack against a chat server and reports what
/// held and what the other members saw.
#[derive(Debug, Parser)]
#[command(name = "chatattack")]
struct Args {
    /// The attack to run (see --list)
    #[arg(long, required_unless_present = "list")]
    scenario: Option<String>,
    /// List the scenarios and exit
    #[arg(long)]
    list: bool,
    /// Chat address of a running server (loopback only)
    #[arg(long, value_name = "ADDR", conflicts_with = "spawn_server")]
    server: Option<SocketAddr>,
    /// Voice address of that server (loopback only)
    #[arg(long, value_name = "ADDR", requires = "server")]
    voice: Option<SocketAddr>,
    /// Process id of that server, for its memory and descriptors
    #[arg(long, value_name = "PID", requires = "server")]
    pid: Option<u32>,
    /// Spool directory of that server, for counting spool files
    #[arg(long, value_name = "DIR", requires = "server")]
    spool_dir: Option<PathBuf>,
    /// Start chatserver (default limits, free loopback ports) and attack it
    #[arg(long)]
    spawn_server: bool,
    /// Soft open-file limit for the spawned server (default: the machine's,
    /// except 4096 for idle-uploads)
    #[arg(long, value_name = "N", requires = "spawn_server")]
    server_nofile: Option<u64>,
    /// Attacking connections (or offers, speakers: the scenario's main
    /// count); the default reproduces the issue
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Seconds the attack is held (the scenario's default otherwise)
    #[arg(long, value_name = "S")]
    seconds: Option<f64>,
    /// Print one JSON object instead of the summary
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if args.list {
        for (name, what) in SCENARIOS {
            println!("{name:<24} item {what}");
        }
        return Ok(());
    }
    let Some(name) = args.scenario.as_deref() else {
        bail!("--scenario is required");
    };
    if !SCENARIOS.iter().any(|(n, _)| *n == name) {
        bail!("unknown scenario {name:?} (try --list)");
    }
    for addr in [args.server, args.voice].into_iter().flatten() {
        if !addr.ip().is_loopback() {
            bail!("{addr} is not a loopback address: chatattack only attacks loopback");
        }
    }
    raise_fd_limit();
    let mut target = if let Some(chat) = args.server {
        Target {
            chat,
            voice: args.voice,
            pid: args.pid,
            spool: args.spool_dir.clone(),
            server: None,
        }
    } else if args.spawn_server {
        Target::spawn(args.server_nofile.or(scenarios::server_nofile(name)))?
    } else {
        bail!("give --server ADDR [--voice ADDR --pid PID] or --spawn-server");
    };
    let scale = Scale {
        count: args.count,
        seconds: args.seconds,
    };
    // Other work on the machine shows in every latency: record how busy it was.
    let load_avg_1m: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    let sampler = Sampler::start(target.pid);
    let probe = Probe::start(target.chat);
    let started = std::time::Instant::now();
    let result = scenarios::run(name, &mut target, &sampler, scale);
    let elapsed = started.elapsed();
    eprintln!(
        "chatattack: {name} ran {:.1} s; stopping the probe and the server",
        elapsed.as_secs_f64()
    );
    let probe = probe.finish();
    let server = sampler.finish();
    let longest_turn = target.stop();
    let mut result = result?;
    if let (Some(extra), Value::Object(map)) = (scenarios::after_stop(name, &target), &mut result)
        && let Value::Object(extra) = extra
    {
        map.extend(extra);
    }
    drop(target);
    eprintln!(
        "chatattack: done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let out = json!({
        "scenario": name,
        "seconds": chatbench::attack::round2(elapsed.as_secs_f64()),
        "result": result,
        "probe": probe,
        "server": server,
        "longest_turn_ms": longest_turn,
        "load_avg_1m_at_start": load_avg_1m,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
    });
    if args.json {
        println!("{out}");
    } else {
        println!("chatattack {name}");
        print_tree(&out, "  ");
    }
    Ok(())
}

/// The summary: one `key: value` line per leaf, nested objects indented.
fn print_tree(v: &Value, indent: &str) {
    let Value::Object(map) = v else {
        return;
    };
    for (k, v) in map {
        match v {
            Value::Object(_) => {
                println!("{indent}{k}:");
                print_tree(v, &format!("{indent}  "));
            }
            Value::String(s) => println!("{indent}{k}: {s}"),
            other => println!("{indent}{k}: {other}"),
        }
    }
}
