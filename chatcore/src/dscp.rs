//! Network priority of voice (docs/protocol.md §16): every voice socket, the
//! server's (the voice port's UDP socket, its TCP listener and each accepted
//! TCP voice connection) and the client's (UDP and the TCP fallback), marks
//! its packets for expedited forwarding, DSCP EF (the TOS / traffic-class
//! byte 0xB8, through `IP_TOS` for IPv4 and `IPV6_TCLASS` for IPv6), and on
//! Linux also gets `SO_PRIORITY` 6 so the host's own queues send voice
//! first. Routers that honour DSCP then queue voice ahead of bulk traffic.
//! Setting an option is one non-blocking system call; a failure to mark (a
//! platform or sandbox that refuses) is logged once and never fatal: voice
//! works unmarked. Shared by the server and the voice engine (`chatvoice`),
//! so both mark alike.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::SockRef;

/// DSCP EF (46) in the upper six bits of the TOS / traffic-class byte.
pub const DSCP_EF_TOS: u32 = 0xB8;
/// `SO_PRIORITY` for voice: 6, the highest an unprivileged process may set
/// (the "interactive" band of the default queueing discipline).
pub const VOICE_SO_PRIORITY: u32 = 6;

/// Marks `sock` for expedited forwarding; `addr` (its peer or its own
/// address) chooses the option by address family. Logs the first failure
/// only.
pub fn mark_voice<'a>(sock: impl Into<SockRef<'a>>, addr: SocketAddr) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let sock = sock.into();
    let tos = if addr.is_ipv4() {
        sock.set_tos_v4(DSCP_EF_TOS)
    } else {
        set_tclass(&sock)
    };
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let prio = sock.set_priority(VOICE_SO_PRIORITY);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let prio: std::io::Result<()> = Ok(());
    if let Err(e) = tos.and(prio)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(error = %e, "voice: cannot mark packets for expedited forwarding (DSCP EF); sending unmarked");
    }
}

#[cfg(any(
    target_os = "android",
    target_os = "freebsd",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "openbsd",
))]
fn set_tclass(sock: &SockRef<'_>) -> std::io::Result<()> {
    sock.set_tclass_v6(DSCP_EF_TOS)
}

#[cfg(not(any(
    target_os = "android",
    target_os = "freebsd",
    target_os = "linux",
    target_os = "macos",
    target_os = "netbsd",
    target_os = "openbsd",
)))]
fn set_tclass(_: &SockRef<'_>) -> std::io::Result<()> {
    Ok(())
}
