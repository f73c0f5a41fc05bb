//! Messages over byte streams and datagrams: framing, and blocking or non-blocking use.
//!
//! A pipe or a stream socket (Unix stream, TCP) carries *bytes*, not messages: two `write`s
//! of 5 bytes may arrive as one `read` of 10, or as reads of 3 and 7. To carry messages the
//! sender marks where each one ends. ipckit prefixes every message with its length:
//!
//! ```text
//! +----------------------+------------------------+
//! | length: u32, little- | payload: `length`      |
//! | endian (4 bytes)     | bytes                  |
//! +----------------------+------------------------+
//! ```
//!
//! (the length-prefix framing of many protocols: Protocol Buffers' delimited streams, the
//! PostgreSQL wire protocol, Kafka; see also [RFC 1831, record marking] for the same idea in
//! Sun RPC over TCP). The receiver reads 4 bytes, then exactly that many more. Because the
//! length comes from the peer, it is checked against a *maximum frame size* before anything is
//! allocated: a hostile or corrupt length of 4 GiB is refused with
//! [`TransportError::TooLarge`], not obeyed.
//!
//! A datagram socket (UDP, Unix datagram) already keeps message boundaries, but may cut a
//! datagram that does not fit the receiver's buffer; [`Datagrams`] writes the same header into
//! each datagram, so a cut message is detected ([`TransportError::TruncatedFrame`]) instead of
//! being delivered short.
//!
//! ## Blocking and non-blocking
//!
//! [`Framed`] and [`Datagrams`] put their descriptor in non-blocking mode (`O_NONBLOCK`) and
//! wait, where a call may wait, in [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
//! That gives the three forms of [`Sender`] and [`Receiver`] with one code path: a
//! `try_` call that would block returns [`TransportError::WouldBlock`] — the `EAGAIN` that the
//! course shows a non-blocking socket returning — and a `_timeout` call waits at most its
//! timeout. A partly arrived frame stays buffered inside the receiver until the rest comes.
//!
//! ## End of the conversation
//!
//! End of file exactly at a frame boundary is the peer's clean goodbye:
//! [`TransportError::Closed`]. End of file inside a frame means the peer died or closed
//! mid-message: [`TransportError::TruncatedFrame`]`{ expected, got }`.
//!
//! [RFC 1831, record marking]: https://www.rfc-editor.org/rfc/rfc1831#section-10

use crate::sys::{self, Readiness};
use crate::transport::{Receiver, Result, Sender, TransportError};
use std::io::{self, Read, Write};
use std::net::UdpSocket;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

/// Bytes of the length prefix in front of every frame.
pub const HEADER_LEN: usize = 4;

/// Default largest message [`Framed`] accepts: 16 MiB.
pub const DEFAULT_MAX_FRAME: usize = 16 << 20;

/// Largest payload of one UDP datagram over IPv4 (65535 − 20 IP − 8 UDP header bytes).
pub const UDP_MAX_PAYLOAD: usize = 65_507;

/// Default largest message [`Datagrams`] accepts: what fits one UDP datagram with its header.
pub const DEFAULT_MAX_DATAGRAM: usize = UDP_MAX_PAYLOAD - HEADER_LEN;

const READ_CHUNK: usize = 64 << 10;

/// Appends the frame for `msg` (header and payload) to `out`.
///
/// Errors: [`TransportError::TooLarge`] if `msg` is longer than `max` (or than `u32::MAX`).
pub fn encode_frame(msg: &[u8], max: usize, out: &mut Vec<u8>) -> Result<()> {
    let max = max.min(u32::MAX as usize);
    if msg.len() > max {
        return Err(TransportError::TooLarge { len: msg.len(), max });
    }
    out.reserve(HEADER_LEN + msg.len());
    out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// Checks one received datagram that should hold exactly one frame and returns its payload.
///
/// Errors: [`TransportError::TruncatedFrame`] if the datagram is shorter than its header says
/// (or shorter than a header), [`TransportError::TooLarge`] if the announced length exceeds
/// `max`, [`TransportError::Io`] (`InvalidData`) if it is longer than its header says.
pub fn decode_datagram(datagram: &[u8], max: usize) -> Result<&[u8]> {
    let Some((head, payload)) = datagram.split_first_chunk::<HEADER_LEN>() else {
        return Err(TransportError::TruncatedFrame { expected: HEADER_LEN, got: datagram.len() });
    };
    let len = u32::from_le_bytes(*head) as usize;
    if len > max {
        return Err(TransportError::TooLarge { len, max });
    }
    match payload.len() {
        n if n < len => Err(TransportError::TruncatedFrame { expected: len, got: n }),
        n if n > len => Err(TransportError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("datagram carries {n} payload bytes but its header says {len}"),
        ))),
        _ => Ok(payload),
    }
}

/// The instant `timeout` from now; `None` (no limit) also for a timeout too large to represent.
fn deadline_of(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Waits for `fd` to be ready until `deadline`; `Err(Timeout)` when it passes.
fn wait(fd: BorrowedFd<'_>, what: Readiness, deadline: Option<Instant>) -> Result<()> {
    let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
    if left == Some(Duration::ZERO) {
        return Err(TransportError::Timeout);
    }
    if sys::poll_fd(fd, what, left)? { Ok(()) } else { Err(TransportError::Timeout) }
}

/// Length-prefixed messages over a byte stream `S`: a pipe end, a FIFO end, a
/// [`UnixStream`](std::os::unix::net::UnixStream) or a [`TcpStream`](std::net::TcpStream).
///
/// `Framed<S>` is a [`Receiver`] when `S` can be read and a [`Sender`] when it can be written
/// (a socket is both; a pipe end one of them). [`Framed::new`] puts the descriptor in
/// non-blocking mode, which is shared with every duplicate of it (see the [module
/// docs](self)). For TCP, also turn off Nagle's algorithm (`TcpStream::set_nodelay(true)`)
/// if small messages should leave at once.
///
/// ## Partial sends
///
/// Blocking [`send`](Sender::send) returns when the whole frame is in the kernel. A
/// [`try_send`](Sender::try_send) or [`send_timeout`](Sender::send_timeout) that has written
/// part of a frame when time runs out keeps the rest in the `Framed` and returns `Ok` (the
/// message is committed: a frame is never abandoned half-written); the rest goes out first
/// on the next send or [`flush`](Framed::flush). Dropping a `Framed` with bytes pending tries
/// to flush them for at most one second.
#[derive(Debug)]
pub struct Framed<S: AsFd> {
    io: Option<S>,
    max_frame: usize,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    wbuf: Vec<u8>,
    wpos: usize,
}

impl<S: AsFd> Framed<S> {
    /// Wraps `io`, setting its descriptor to non-blocking mode. Accepts messages up to
    /// [`DEFAULT_MAX_FRAME`] bytes. Errors: `fcntl` failing on a bad descriptor.
    pub fn new(io: S) -> io::Result<Framed<S>> {
        sys::set_nonblocking(io.as_fd(), true)?;
        Ok(Framed {
            io: Some(io),
            max_frame: DEFAULT_MAX_FRAME,
            rbuf: Vec::new(),
            rstart: 0,
            rend: 0,
            wbuf: Vec::new(),
            wpos: 0,
        })
    }

    /// Sets the largest message sent or accepted, in bytes (at most `u32::MAX`). A frame header
    /// announcing more is refused with [`TransportError::TooLarge`] before anything is read or
    /// allocated for it.
    pub fn with_max_frame(mut self, max: usize) -> Framed<S> {
        self.max_frame = max.min(u32::MAX as usize);
        self
    }

    /// The largest message sent or accepted.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        self.io.as_ref().expect("present until drop")
    }

    /// Bytes of an already accepted message not yet handed to the kernel.
    pub fn pending_bytes(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Bytes received but not yet returned as messages (part of a frame, or whole frames).
    pub fn buffered_bytes(&self) -> usize {
        self.rend - self.rstart
    }

    /// Returns the stream, in non-blocking mode. Pending and buffered bytes are lost: call
    /// [`flush`](Self::flush) first if that matters.
    pub fn into_inner(mut self) -> S {
        self.wbuf.clear();
        self.wpos = 0;
        self.io.take().expect("present until drop")
    }
}

impl<S: AsFd + Write> Framed<S> {
    /// Writes the bytes of accepted messages still pending, waiting at most `timeout`
    /// (`None`: no limit). Errors: [`TransportError::Timeout`], [`TransportError::Closed`]
    /// (no reader: `EPIPE`), [`TransportError::Io`].
    pub fn flush_timeout(&mut self, timeout: Option<Duration>) -> Result<()> {
        self.flush_until(deadline_of(timeout))
    }

    /// Writes pending bytes, blocking until done. See [`flush_timeout`](Self::flush_timeout).
    pub fn flush(&mut self) -> Result<()> {
        self.flush_until(None)
    }

    fn flush_until(&mut self, deadline: Option<Instant>) -> Result<()> {
        let io = self.io.as_mut().expect("present until drop");
        while self.wpos < self.wbuf.len() {
            match io.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(TransportError::Closed),
                Ok(n) => self.wpos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(io.as_fd(), Readiness::Write, deadline)?;
                }
                Err(e) => return Err(TransportError::from_io(e)),
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        Ok(())
    }
}

impl<S: AsFd + Write> Sender for Framed<S> {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = deadline_of(timeout);
        // Earlier messages first; while they do not fit, this one is not accepted.
        self.flush_until(deadline)?;
        encode_frame(msg, self.max_frame, &mut self.wbuf)?;
        let io = self.io.as_mut().expect("present until drop");
        // The first write decides: nothing written means the message is not accepted.
        loop {
            match io.write(&self.wbuf) {
                Ok(0) => return Err(TransportError::Closed),
                Ok(n) => {
                    self.wpos = n;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if let Err(err) = wait(io.as_fd(), Readiness::Write, deadline) {
                        self.wbuf.clear();
                        return Err(err);
                    }
                }
                Err(e) => {
                    self.wbuf.clear();
                    return Err(TransportError::from_io(e));
                }
            }
        }
        // Committed: finish it in time if possible, or leave the rest pending.
        match self.flush_until(deadline) {
            Err(TransportError::Timeout) if timeout.is_some() => Ok(()),
            r => r,
        }
    }
}

impl<S: AsFd + Read> Framed<S> {
    /// Takes one whole frame out of the read buffer, if there is one.
    fn take_frame(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let have = &self.rbuf[self.rstart..self.rend];
        let Some(head) = have.first_chunk::<HEADER_LEN>() else { return Ok(None) };
        let len = u32::from_le_bytes(*head) as usize;
        if len > self.max_frame {
            return Err(TransportError::TooLarge { len, max: self.max_frame });
        }
        if have.len() < HEADER_LEN + len {
            return Ok(None);
        }
        buf.clear();
        buf.extend_from_slice(&have[HEADER_LEN..HEADER_LEN + len]);
        self.rstart += HEADER_LEN + len;
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        }
        Ok(Some(len))
    }

    /// How many bytes the frame at the front still needs (at least 1).
    fn bytes_missing(&self) -> usize {
        let have = &self.rbuf[self.rstart..self.rend];
        match have.first_chunk::<HEADER_LEN>() {
            Some(head) => (HEADER_LEN + u32::from_le_bytes(*head) as usize) - have.len(),
            None => HEADER_LEN - have.len(),
        }
    }

    /// Makes room at the end of the read buffer for at least `need` more bytes.
    fn make_room(&mut self, need: usize) {
        if self.rbuf.len() - self.rend >= need.max(4096) {
            return;
        }
        if self.rstart > 0 {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
        }
        let want = self.rend + need.max(READ_CHUNK);
        if self.rbuf.len() < want {
            self.rbuf.resize(want, 0);
        }
    }
}

impl<S: AsFd + Read> Receiver for Framed<S> {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let deadline = deadline_of(timeout);
        loop {
            if let Some(n) = self.take_frame(buf)? {
                return Ok(n);
            }
            let need = self.bytes_missing();
            self.make_room(need);
            let io = self.io.as_mut().expect("present until drop");
            match io.read(&mut self.rbuf[self.rend..]) {
                Ok(0) => {
                    let have = &self.rbuf[self.rstart..self.rend];
                    return Err(match have.first_chunk::<HEADER_LEN>() {
                        _ if have.is_empty() => TransportError::Closed,
                        None => {
                            TransportError::TruncatedFrame { expected: HEADER_LEN, got: have.len() }
                        }
                        Some(head) => TransportError::TruncatedFrame {
                            expected: u32::from_le_bytes(*head) as usize,
                            got: have.len() - HEADER_LEN,
                        },
                    });
                }
                Ok(n) => self.rend += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(io.as_fd(), Readiness::Read, deadline)?;
                }
                Err(e) => return Err(TransportError::from_io(e)),
            }
        }
    }
}

impl<S: AsFd> Drop for Framed<S> {
    fn drop(&mut self) {
        if self.wpos < self.wbuf.len() {
            if let Some(io) = self.io.as_mut() {
                let deadline = Instant::now() + Duration::from_secs(1);
                // Best effort, bounded: the peer may never read again.
                let mut pos = self.wpos;
                while pos < self.wbuf.len() {
                    match sys_write(io.as_fd(), &self.wbuf[pos..]) {
                        Ok(0) => break,
                        Ok(n) => pos += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if wait(io.as_fd(), Readiness::Write, Some(deadline)).is_err() {
                                break;
                            }
                        }
                        Err(_) => break,
                    }
                }
            }
        }
    }
}

/// `Drop` cannot require `S: Write`; write through a duplicate-free `File` view instead.
fn sys_write(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    let owned = fd.try_clone_to_owned()?;
    std::fs::File::from(owned).write(data)
}

/// A connected datagram socket: one `send` is one datagram to the peer, one `recv` one
/// datagram from it. Implemented for [`UdpSocket`] and [`UnixDatagram`]; both must be
/// `connect`ed (or made by `UnixDatagram::pair`) before use.
pub trait DatagramSocket: AsFd {
    /// Sends one datagram to the connected peer (`send(2)`).
    fn send_datagram(&self, buf: &[u8]) -> io::Result<usize>;
    /// Receives one datagram from the connected peer (`recv(2)`); a datagram longer than `buf`
    /// is cut to fit.
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<usize>;
}

impl DatagramSocket for UdpSocket {
    fn send_datagram(&self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

impl DatagramSocket for UnixDatagram {
    fn send_datagram(&self, buf: &[u8]) -> io::Result<usize> {
        self.send(buf)
    }
    fn recv_datagram(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.recv(buf)
    }
}

/// Framed messages over a connected datagram socket: one message per datagram, each with the
/// same length header as [`Framed`], so that a datagram cut short is reported as
/// [`TransportError::TruncatedFrame`] rather than delivered short.
///
/// Datagrams may be lost (UDP drops when the receiver's buffer is full; nothing is resent) and,
/// across a network, reordered; on loopback they keep their order. Sending to a UDP port where
/// nobody listens makes a later call fail with [`TransportError::Closed`] (`ECONNREFUSED`).
#[derive(Debug)]
pub struct Datagrams<S: DatagramSocket> {
    sock: S,
    max_frame: usize,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl<S: DatagramSocket> Datagrams<S> {
    /// Wraps a connected socket, setting it non-blocking. Accepts messages up to
    /// [`DEFAULT_MAX_DATAGRAM`] bytes.
    pub fn new(sock: S) -> io::Result<Datagrams<S>> {
        sys::set_nonblocking(sock.as_fd(), true)?;
        Ok(Datagrams {
            sock,
            max_frame: DEFAULT_MAX_DATAGRAM,
            send_buf: Vec::new(),
            recv_buf: Vec::new(),
        })
    }

    /// Sets the largest message sent or accepted (the socket's own limit still applies: UDP
    /// refuses datagrams over [`UDP_MAX_PAYLOAD`] with `EMSGSIZE`).
    pub fn with_max_frame(mut self, max: usize) -> Datagrams<S> {
        self.max_frame = max.min(u32::MAX as usize - HEADER_LEN);
        self
    }

    /// The largest message sent or accepted.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// The wrapped socket.
    pub fn get_ref(&self) -> &S {
        &self.sock
    }

    /// Returns the socket, in non-blocking mode.
    pub fn into_inner(self) -> S {
        self.sock
    }
}

impl<S: DatagramSocket> Sender for Datagrams<S> {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        let deadline = deadline_of(timeout);
        self.send_buf.clear();
        encode_frame(msg, self.max_frame, &mut self.send_buf)?;
        loop {
            match self.sock.send_datagram(&self.send_buf) {
                Ok(n) if n == self.send_buf.len() => return Ok(()),
                Ok(n) => {
                    return Err(TransportError::TruncatedFrame {
                        expected: msg.len(),
                        got: n.saturating_sub(HEADER_LEN),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(self.sock.as_fd(), Readiness::Write, deadline)?;
                }
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => {
                    return Err(TransportError::TooLarge { len: msg.len(), max: self.max_frame });
                }
                Err(e) => return Err(TransportError::from_io(e)),
            }
        }
    }
}

impl<S: DatagramSocket> Receiver for Datagrams<S> {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        let deadline = deadline_of(timeout);
        // One byte more than the largest frame, so that an oversized datagram shows.
        let cap = HEADER_LEN + self.max_frame + 1;
        if self.recv_buf.len() < cap {
            self.recv_buf.resize(cap, 0);
        }
        loop {
            match self.sock.recv_datagram(&mut self.recv_buf[..cap]) {
                Ok(n) => {
                    let payload = decode_datagram(&self.recv_buf[..n], self.max_frame)?;
                    buf.clear();
                    buf.extend_from_slice(payload);
                    return Ok(payload.len());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    wait(self.sock.as_fd(), Readiness::Read, deadline)?;
                }
                Err(e) => return Err(TransportError::from_io(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests;
