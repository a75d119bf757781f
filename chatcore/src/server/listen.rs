//! Binding the chat listener and the voice port: socket options and the
//! accept backlog, before the loop runs.

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, UdpSocket};

use crate::server::error::ServerError;

/// Pending connections the kernel may hold for us (it caps this at
/// `net.core.somaxconn`). mio's default of 1024 overflows in a connection
/// storm while a loop turn is busy writing, and every dropped SYN costs the
/// client a one-second retransmission.
const LISTEN_BACKLOG: i32 = 4096;

/// A non-blocking listener with address reuse and a deep accept queue.
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Binds the voice port: TCP and UDP on the same port number. With port 0
/// the UDP socket must take the port the TCP listener was given, which may
/// be taken for UDP: then try another port, a few times.
pub(crate) fn bind_voice(
    addr: SocketAddr,
) -> Result<(TcpListener, UdpSocket, SocketAddr), ServerError> {
    let bind_err = |addr| move |source| ServerError::Bind { addr, source };
    let mut attempts = if addr.port() == 0 { 16 } else { 1 };
    loop {
        let tcp = listen(addr).map_err(bind_err(addr))?;
        let bound = tcp.local_addr().map_err(bind_err(addr))?;
        match UdpSocket::bind(bound) {
            Ok(udp) => {
                // Voice leaves marked for expedited forwarding; accepted
                // connections are marked again on accept.
                crate::dscp::mark_voice(&udp, bound);
                crate::dscp::mark_voice(&tcp, bound);
                return Ok((tcp, udp, bound));
            }
            Err(e) if attempts > 1 && e.kind() == io::ErrorKind::AddrInUse => attempts -= 1,
            Err(source) => {
                return Err(ServerError::Bind {
                    addr: bound,
                    source,
                });
            }
        }
    }
}
