//! One face for every message-passing mechanism: the [`Sender`] and [`Receiver`] traits.
//!
//! The course's message-based mechanisms differ in how they are made and named (a pipe is
//! inherited, a FIFO has a path, a socket an address, a message queue a key), but once open
//! they all do the same two things: *send a message* and *receive a message*, each of which
//! may have to wait. Code written against these two traits runs unchanged over any of them;
//! `ipckit compare` and the `pipe-vs-socket` benchmark do exactly that.
//!
//! | implementation | transport |
//! |---|---|
//! | [`net::Framed`](crate::net::Framed) | any byte stream: pipe, FIFO, Unix stream socket, TCP |
//! | [`net::Datagrams`](crate::net::Datagrams) | connected datagram sockets: UDP, Unix datagram |
//! | [`mq::QueueEndpoint`](crate::mq::QueueEndpoint) | ipckit's System V style message queue, one type per direction |
//!
//! A one-way transport (a pipe: one end sends, the other receives) becomes a two-way one by
//! pairing two of them in opposite directions: [`Pair`].
//!
//! ## Three forms of every call
//!
//! As everywhere in ipckit, each operation comes blocking, `try_` (never blocks: returns
//! [`TransportError::WouldBlock`], `EAGAIN`), and `_timeout` (returns
//! [`TransportError::Timeout`], `ETIMEDOUT`). An implementation provides one method per
//! trait, [`Sender::send_timeout_opt`] and [`Receiver::recv_timeout_opt_into`], whose
//! `Option<Duration>` timeout covers all three: `None` blocks, `Some(ZERO)` tries, anything
//! else waits that long. A message is sent
//! whole or not at all, and received whole: a receiver never sees part of a message.
//!
//! ## For implementors
//!
//! * A zero timeout must not block, and must still make progress if the transport is ready.
//! * `recv_*_into` *replaces* the contents of the buffer with the message (so one buffer can be
//!   reused without allocating on each message).
//! * The end of the conversation (the peer closed, at a message boundary) is
//!   [`TransportError::Closed`]; a peer that vanished in the middle of a message is
//!   [`TransportError::TruncatedFrame`].
//! * [`TransportError`] is `#[non_exhaustive]`: a transport with its own failure (a removed
//!   message queue, `EIDRM`) adds a variant for it.

use std::io;
use std::time::Duration;

/// Why a send or receive failed. The System V / POSIX `errno` each variant corresponds to is
/// given in brackets.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The call would have to wait, and was asked not to (`EAGAIN`/`EWOULDBLOCK`). Nothing was
    /// sent or consumed; try again later.
    #[error("the operation would block (EAGAIN)")]
    WouldBlock,
    /// The timeout passed before the call could complete (`ETIMEDOUT`). Nothing was sent or
    /// consumed.
    #[error("timed out (ETIMEDOUT)")]
    Timeout,
    /// The peer is gone: end of file at a message boundary when receiving, or no reader left
    /// when sending (`EPIPE`, `ECONNRESET`, `ECONNREFUSED`). The conversation is over.
    #[error("the peer closed the connection")]
    Closed,
    /// The message queue was removed (`EIDRM`): no message will ever pass again.
    #[error("the message queue was removed (EIDRM)")]
    Removed,
    /// The peer closed (or a datagram ended) in the middle of a message: its header announced
    /// `expected` bytes of payload but only `got` arrived.
    #[error("truncated frame: expected {expected} bytes, got {got}")]
    TruncatedFrame {
        /// Payload length the frame header announced.
        expected: usize,
        /// Payload bytes that arrived before the end.
        got: usize,
    },
    /// A message of `len` bytes is larger than the `max` this side accepts [`E2BIG`,
    /// `EMSGSIZE`]. When receiving, the stream cannot be resynchronized: close it.
    #[error("message of {len} bytes exceeds the maximum of {max} (E2BIG)")]
    TooLarge {
        /// The length sent or announced.
        len: usize,
        /// The largest message allowed.
        max: usize,
    },
    /// Any other operating-system error.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl TransportError {
    /// Maps an I/O error: `WouldBlock` → [`WouldBlock`](Self::WouldBlock), `TimedOut` →
    /// [`Timeout`](Self::Timeout), broken pipe / reset / refused → [`Closed`](Self::Closed),
    /// anything else → [`Io`](Self::Io).
    pub fn from_io(e: io::Error) -> TransportError {
        match e.kind() {
            io::ErrorKind::WouldBlock => TransportError::WouldBlock,
            io::ErrorKind::TimedOut => TransportError::Timeout,
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted => TransportError::Closed,
            _ => TransportError::Io(e),
        }
    }
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, TransportError>;

/// The sending half of a message transport.
///
/// ```
/// use ipckit::net::Framed;
/// use ipckit::transport::{Receiver, Sender};
/// use std::os::unix::net::UnixStream;
///
/// let (a, b) = UnixStream::pair().unwrap();
/// let (mut a, mut b) = (Framed::new(a).unwrap(), Framed::new(b).unwrap());
/// a.send(b"hello").unwrap();
/// assert_eq!(b.recv().unwrap(), b"hello");
/// ```
pub trait Sender {
    /// Sends `msg` as one message, waiting at most `timeout` for room (`None`: no limit).
    ///
    /// Errors: [`TransportError::Timeout`] (or [`TransportError::WouldBlock`] for a zero
    /// timeout) when no room came in time, [`TransportError::TooLarge`], [`TransportError::Closed`]
    /// when no one will ever read it, [`TransportError::Io`].
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()>;

    /// Sends `msg`, blocking until there is room.
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_timeout_opt(msg, None)
    }

    /// Sends `msg` if that needs no waiting; [`TransportError::WouldBlock`] otherwise.
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        match self.send_timeout_opt(msg, Some(Duration::ZERO)) {
            Err(TransportError::Timeout) => Err(TransportError::WouldBlock),
            r => r,
        }
    }

    /// Sends `msg`, waiting at most `timeout` ([`TransportError::Timeout`] after that).
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_timeout_opt(msg, Some(timeout))
    }
}

/// The receiving half of a message transport.
pub trait Receiver {
    /// Receives one message into `buf` (replacing its contents), waiting at most `timeout` for
    /// it (`None`: no limit). Returns the message length.
    ///
    /// Errors: [`TransportError::Timeout`] (or [`TransportError::WouldBlock`] for a zero
    /// timeout), [`TransportError::Closed`] at the end of the conversation,
    /// [`TransportError::TruncatedFrame`], [`TransportError::TooLarge`], [`TransportError::Io`].
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize>;

    /// Receives one message into `buf`, blocking until one arrives.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        self.recv_timeout_opt_into(buf, None)
    }

    /// Receives one message into `buf` if one is there whole; [`TransportError::WouldBlock`]
    /// otherwise (a partly arrived message stays buffered inside the receiver).
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        match self.recv_timeout_opt_into(buf, Some(Duration::ZERO)) {
            Err(TransportError::Timeout) => Err(TransportError::WouldBlock),
            r => r,
        }
    }

    /// Receives one message into `buf`, waiting at most `timeout`.
    fn recv_timeout_into(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize> {
        self.recv_timeout_opt_into(buf, Some(timeout))
    }

    /// Receives one message, blocking until one arrives.
    fn recv(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_into(&mut v)?;
        Ok(v)
    }

    /// Receives one message if one is there; [`TransportError::WouldBlock`] otherwise.
    fn try_recv(&mut self) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.try_recv_into(&mut v)?;
        Ok(v)
    }

    /// Receives one message, waiting at most `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.recv_timeout_into(&mut v, timeout)?;
        Ok(v)
    }
}

impl<S: Sender + ?Sized> Sender for &mut S {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        (**self).send_timeout_opt(msg, timeout)
    }
}

impl<R: Receiver + ?Sized> Receiver for &mut R {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        (**self).recv_timeout_opt_into(buf, timeout)
    }
}

impl<S: Sender + ?Sized> Sender for Box<S> {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        (**self).send_timeout_opt(msg, timeout)
    }
}

impl<R: Receiver + ?Sized> Receiver for Box<R> {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        (**self).recv_timeout_opt_into(buf, timeout)
    }
}

/// Two one-way transports used as one two-way transport: sends go to `sender`, receives come
/// from `receiver` (e.g. the write end of one pipe and the read end of another).
///
/// ```
/// use ipckit::net::Framed;
/// use ipckit::pipe::Pipe;
/// use ipckit::transport::{Pair, Receiver, Sender};
///
/// let (there, back) = (Pipe::new().unwrap(), Pipe::new().unwrap());
/// let mut a = Pair {
///     sender: Framed::new(there.writer).unwrap(),
///     receiver: Framed::new(back.reader).unwrap(),
/// };
/// let mut b = Pair {
///     sender: Framed::new(back.writer).unwrap(),
///     receiver: Framed::new(there.reader).unwrap(),
/// };
/// a.send(b"ping").unwrap();
/// assert_eq!(b.recv().unwrap(), b"ping");
/// b.send(b"pong").unwrap();
/// assert_eq!(a.recv().unwrap(), b"pong");
/// ```
#[derive(Debug)]
pub struct Pair<S, R> {
    /// Where messages go.
    pub sender: S,
    /// Where messages come from.
    pub receiver: R,
}

impl<S: Sender, R> Sender for Pair<S, R> {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.sender.send_timeout_opt(msg, timeout)
    }
}

impl<S, R: Receiver> Receiver for Pair<S, R> {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.receiver.recv_timeout_opt_into(buf, timeout)
    }
}
