//! A UDP proxy that adds network jitter between one client and the
//! server's voice port, on real sockets: every datagram, both ways, is held
//! for a random delay before it is passed on (so packets also overtake one
//! another, as on a jittery path). Its threads end when it is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};

/// The proxy; point a client's voice port at [`JitterProxy::port`].
pub struct JitterProxy {
    /// The port the client sends to (UDP on loopback).
    pub port: u16,
    /// Tells the threads to end.
    stop: Arc<AtomicBool>,
}

impl Drop for JitterProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A datagram waiting for its time: when it is due, the order it came in
/// (ties), which way it goes, its bytes.
type Held = (Instant, u64, Way, Vec<u8>);

/// Which socket a held datagram leaves by.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    /// To the server.
    Up,
    /// To the client.
    Down,
}

impl JitterProxy {
    /// Starts a proxy to `server` (the voice port) that delays each
    /// datagram by a uniformly random 0..`max_delay` (wall time), drawn
    /// from a generator seeded with `seed`.
    pub fn start(server: SocketAddr, max_delay: Duration, seed: u64) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").expect("proxy front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("proxy back");
        back.connect(server).expect("proxy connect");
        let port = front.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        // To the scheduler: when due, which way, the bytes, and for
        // datagrams from the client its address (where answers go).
        type Taken = (Instant, Way, Vec<u8>, Option<SocketAddr>);
        let (tx, rx) = mpsc::channel::<Taken>();
        // Readers: one per direction, each drawing its own delays.
        for (way, sock) in [
            (Way::Up, front.try_clone().expect("clone")),
            (Way::Down, back.try_clone().expect("clone")),
        ] {
            let tx = tx.clone();
            let stop = stop.clone();
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ way as u64);
            sock.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
            thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    let delay = max_delay.mul_f64(rng.random_range(0.0..1.0));
                    let client = (way == Way::Up).then_some(from);
                    if tx
                        .send((Instant::now() + delay, way, buf[..n].to_vec(), client))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(tx);
        // The scheduler: sends each datagram when its delay is over.
        let stop2 = stop.clone();
        thread::spawn(move || {
            let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
            let mut client: Option<SocketAddr> = None;
            let mut n = 0u64;
            while !stop2.load(Ordering::Relaxed) {
                let wait = held.peek().map_or(Duration::from_millis(50), |Reverse(h)| {
                    h.0.saturating_duration_since(Instant::now())
                });
                match rx.recv_timeout(wait) {
                    Ok((due, way, bytes, from)) => {
                        if from.is_some() {
                            client = from;
                        }
                        n += 1;
                        held.push(Reverse((due, n, way, bytes)));
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
                let now = Instant::now();
                while held.peek().is_some_and(|Reverse(h)| h.0 <= now) {
                    let Some(Reverse((_, _, way, bytes))) = held.pop() else {
                        break;
                    };
                    match (way, client) {
                        (Way::Up, _) => {
                            let _ = back.send(&bytes);
                        }
                        (Way::Down, Some(c)) => {
                            let _ = front.send_to(&bytes, c);
                        }
                        (Way::Down, None) => {}
                    }
                }
            }
        });
        Self { port, stop }
    }
}
