//! `--metrics-listen ADDR`: Prometheus metrics at `/metrics` and a health
//! check at `/health`, served by one small HTTP thread of the daemon.
//!
//! The recorder (`metrics-exporter-prometheus`, without its own HTTP
//! server: that would bring an async runtime) is installed before the
//! server is built, so chatcore's handles register with it; the loop only
//! bumps them. Scrapes run here, on this thread: rendering never touches
//! the loop. `/health` answers 200 while the loop turned in the last
//! [`HEALTH_STALL`] (it turns at least once a timer tick even when idle),
//! 503 otherwise (stuck, or shutting down).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::Context;
use chatcore::ServerHandle;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A loop that has not turned for this long is reported unhealthy.
pub const HEALTH_STALL: Duration = Duration::from_secs(5);
/// How often the recorder's histograms are compacted when nobody scrapes
/// (they would otherwise keep every sample until the next scrape).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// A scraper that sends nothing for this long is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Loop-turn buckets, in seconds: 10 µs to 1 s.
const TURN_BUCKETS: [f64; 12] = [
    0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0,
];
/// Store commit buckets, in seconds: 100 µs to 5 s.
const COMMIT_BUCKETS: [f64; 11] = [
    0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 1.0, 5.0,
];

/// Installs the Prometheus recorder for this process. Call before the
/// server is built.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(chatcore::server::metrics::TURN_SECONDS.into()),
            &TURN_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(chatcore::server::metrics::STORE_COMMIT_SECONDS.into()),
            &COMMIT_BUCKETS,
        )?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    let upkeep = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            }
        })
        .context("cannot start the metrics upkeep thread")?;
    Ok(handle)
}

/// Binds `addr` and serves `/metrics` and `/health` on a new thread
/// (for the life of the process). Returns the bound address.
pub fn serve(
    addr: SocketAddr,
    prometheus: PrometheusHandle,
    server: ServerHandle,
) -> anyhow::Result<SocketAddr> {
    let listener =
        TcpListener::bind(addr).with_context(|| format!("cannot listen for metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics-http".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = answer(stream, &prometheus, &server) {
                            tracing::debug!("metrics request failed: {e}");
                        }
                    }
                    Err(e) => {
                        tracing::debug!("metrics accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .context("cannot start the metrics thread")?;
    Ok(bound)
}

/// One request, one answer, then the connection is closed.
fn answer(
    stream: TcpStream,
    prometheus: &PrometheusHandle,
    server: &ServerHandle,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?).take(8192);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    // The headers are read and ignored (up to the size cap).
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", prometheus.render()),
        ("GET", "/health") => {
            let idle = server.idle_for();
            if idle < HEALTH_STALL {
                ("200 OK", "text/plain", "ok\n".to_owned())
            } else {
                (
                    "503 Service Unavailable",
                    "text/plain",
                    format!(
                        "the event loop has not turned for {} ms\n",
                        idle.as_millis()
                    ),
                )
            }
        }
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /health\n".into(),
        ),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    let mut out = reader.into_inner().into_inner();
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}
