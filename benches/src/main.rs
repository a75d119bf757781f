//! `chatbench`: the load generator. One command reproduces the 1000-client
//! experiment of the original Python system against a real `chatserver`:
//!
//! ```text
//! cargo run --release -p chatbench -- --spawn-server --clients 1000 --rate 1 --duration 10
//! ```
//!
//! `--rooms N` spreads the clients over N named rooms (docs/benchmarks.md,
//! "Rooms"); `--big-room-clients M` puts M of them in one big room beside
//! the small ones.
//!
//! `--tls` runs the same experiment over TLS (see docs/benchmarks.md,
//! "Over TLS"). See docs/benchmarks.md for the experiments and their figures.

use chatbench::{loadgen, report, spawn};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Parser;

/// Drives thousands of chat clients against a server and measures delivery.
#[derive(Debug, Parser)]
#[command(name = "chatbench", version)]
struct Args {
    /// Server chat address (loopback only)
    #[arg(long, default_value = "127.0.0.1:6789")]
    server: SocketAddr,
    /// Start a chatserver child on a free port and stop it at the end
    #[arg(long)]
    spawn_server: bool,
    /// Number of clients
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Messages each client sends (overrides --duration)
    #[arg(long)]
    messages: Option<u64>,
    /// Seconds of sending (messages = rate x duration)
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Messages per second per client
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Chat text bytes per message (at least 16)
    #[arg(long, default_value_t = 32)]
    payload: usize,
    /// New connections per second (0 = as fast as the server takes them)
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Source addresses 127.0.0.1.. to spread clients over (default: one
    /// per 20 000 clients)
    #[arg(long)]
    sources: Option<u8>,
    /// Seconds to wait for stragglers after the last message
    #[arg(long, default_value_t = 5.0)]
    drain: f64,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
    /// Speak TLS: every client drives its own rustls session (full
    /// handshakes, no session resumption). The server's certificate is NOT
    /// verified: this is a benchmark against our own server on loopback,
    /// never a way to talk to a server you do not control. With
    /// --spawn-server the child serves TLS with its self-signed certificate
    /// (else it is started with --no-tls).
    #[arg(long)]
    tls: bool,
    /// Spread the clients over N named rooms: client i joins room
    /// `r{i mod N}` after its welcome (it counts as logged in once its
    /// `room_joined` came) and sends its chats there; it expects the chats
    /// of its room only, and any other chat counts as `wrong_room`. The
    /// JSON gains "rooms". Absent: everyone talks in the default room.
    #[arg(long)]
    rooms: Option<usize>,
    /// With --rooms: the first M clients join one room `big` instead, and
    /// the others are spread over the N small rooms; latency and losses
    /// are reported apart for the big room and the small rooms ("rooms" ->
    /// "big" / "small" in the JSON). M is at most --clients.
    #[arg(long, default_value_t = 0)]
    big_room_clients: usize,
    /// Messages per second per big-room client (default: --rate): M x this
    /// chats per second into the big room, its members sending in turn,
    /// over the same period as the small rooms. Each big-room chat goes to
    /// all M members, so keep M x M x this within what the machine
    /// delivers (e.g. 0.01 for M = 10000: 100 chats/s, 1 M deliveries/s).
    #[arg(long)]
    big_room_rate: Option<f64>,
}

fn main() -> ExitCode {
    chatbench::exit(run())
}

fn run() -> Result<()> {
    let args = Args::parse();
    if !args.server.ip().is_loopback() {
        bail!("--server must be a loopback address: this tool only loads 127.0.0.0/8");
    }
    if args.clients == 0 || args.clients > 200_000 {
        bail!("--clients must be between 1 and 200000");
    }
    let rooms = args.rooms.unwrap_or(0);
    if args.rooms == Some(0) {
        bail!("--rooms must be at least 1");
    }
    if args.big_room_clients > 0 && rooms == 0 {
        bail!("--big-room-clients needs --rooms (the small rooms beside the big one)");
    }
    if args.big_room_clients > args.clients {
        bail!("--big-room-clients must be at most --clients");
    }
    let big_room_rate = args.big_room_rate.unwrap_or(args.rate);
    if !(big_room_rate >= 0.0 && big_room_rate.is_finite()) {
        bail!("--big-room-rate must be a number >= 0");
    }
    // Every client is a file descriptor: use all the hard limit allows.
    let _ = rlimit::increase_nofile_limit(u64::MAX);

    let messages = args
        .messages
        .unwrap_or_else(|| (args.rate * args.duration).round().max(1.0) as u64);
    let sources = args
        .sources
        .unwrap_or_else(|| args.clients.div_ceil(20_000) as u8)
        .max(1);
    let sources = if sources == 1 {
        Vec::new()
    } else {
        (1..=sources)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect()
    };

    // The big room sends over the same period as the small rooms.
    let period = match args.messages {
        Some(m) if args.rate > 0.0 => m as f64 / args.rate,
        _ => args.duration,
    };
    let big_room_total = (big_room_rate * args.big_room_clients as f64 * period).round() as u64;
    // The server's room cap (1000 by default) must not refuse a join.
    let extra = if rooms > 0 {
        format!("max_rooms = {}\n", (rooms + 1).max(1000))
    } else {
        String::new()
    };
    let spawned = if args.spawn_server {
        Some(spawn::SpawnedServer::start_tls(
            args.clients,
            10_000,
            &extra,
            args.tls,
        )?)
    } else {
        None
    };
    let pid = spawned.as_ref().map(spawn::SpawnedServer::pid);
    let server = spawned.as_ref().map_or(args.server, |s| s.addr);
    let rss_start = pid.and_then(|p| spawn::proc_kib(p, "VmRSS"));
    let cpu_start = pid.and_then(spawn::proc_cpu_s);
    let mut rss_joined = None;
    let mut cpu_joined = None;
    let tls = args.tls.then(|| {
        // One shared configuration; resumption off so that every client
        // pays a full handshake, as 10 000 distinct people would.
        let mut config = (*chatcore::tls::insecure_client_config()).clone();
        config.resumption = rustls::client::Resumption::disabled();
        std::sync::Arc::new(config)
    });

    let plan = loadgen::Plan {
        server,
        clients: args.clients,
        messages,
        rate: args.rate,
        payload: args.payload,
        connect_rate: args.connect_rate,
        sources,
        login_timeout: Duration::from_secs(120),
        drain: Duration::from_secs_f64(args.drain),
        tls,
        rooms,
        big_room_clients: args.big_room_clients,
        big_room_rate,
        big_room_total,
    };
    let outcome = loadgen::run(&plan, &mut || {
        rss_joined = pid.and_then(|p| spawn::proc_kib(p, "VmRSS"));
        cpu_joined = pid.and_then(spawn::proc_cpu_s);
    })?;
    let cpu_end = pid.and_then(spawn::proc_cpu_s);
    let memory = report::Memory {
        start_kib: rss_start,
        joined_kib: rss_joined,
        peak_kib: pid.and_then(|p| spawn::proc_kib(p, "VmHWM")),
        cpu_login_s: cpu_start.zip(cpu_joined).map(|(a, b)| b - a),
        cpu_send_s: cpu_joined.zip(cpu_end).map(|(a, b)| b - a),
    };
    drop(spawned);
    if args.json {
        println!("{}", report::json(&outcome, &memory));
    } else {
        print!("{}", report::table(&outcome, &memory, &plan));
    }
    Ok(())
}
