//! Network priority of the voice port: the UDP socket, the TCP listener
//! and every accepted TCP voice connection mark what they send for
//! expedited forwarding, DSCP EF (TOS / traffic-class byte 0xB8, through
//! `IP_TOS` for IPv4 and `IPV6_TCLASS` for IPv6) and, on Linux,
//! `SO_PRIORITY` 6, so routers and the host's own queues send voice ahead
//! of bulk traffic (docs/protocol.md §16). Setting an option is one
//! non-blocking system call; a failure is logged once and never fatal.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use socket2::SockRef;

/// DSCP EF (46) in the upper six bits of the TOS / traffic-class byte.
pub const DSCP_EF_TOS: u32 = 0xB8;
/// `SO_PRIORITY` for voice (the highest an unprivileged process may set).
pub const VOICE_SO_PRIORITY: u32 = 6;

/// Marks `sock`, bound or connected at `local` (its address family
/// chooses the option), for expedited forwarding.
pub(crate) fn mark_voice<'a>(sock: impl Into<SockRef<'a>>, local: SocketAddr) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    let sock = sock.into();
    let tos = if local.is_ipv4() {
        sock.set_tos_v4(DSCP_EF_TOS)
    } else {
        sock.set_tclass_v6(DSCP_EF_TOS)
    };
    #[cfg(target_os = "linux")]
    let prio = sock.set_priority(VOICE_SO_PRIORITY);
    #[cfg(not(target_os = "linux"))]
    let prio: std::io::Result<()> = Ok(());
    if let Err(e) = tos.and(prio)
        && !WARNED.swap(true, Ordering::Relaxed)
    {
        tracing::warn!(error = %e, "voice port: cannot mark packets for expedited forwarding (DSCP EF); sending unmarked");
    }
}
