//! A message queue as a [`transport`] endpoint, so code written against
//! [`Sender`]/[`Receiver`] runs over a queue as over a pipe or a socket.
//!
//! One queue carries both directions by message type, as the course suggests for a client
//! and a server: each endpoint sends with its own type and receives with a [`Selector`]
//! (typically the peer's type).

use super::{MessageQueue, RecvError, Selector, SendError, Wait};
use crate::transport::{self, Receiver, Sender, TransportError};
use std::time::Duration;

/// A [`MessageQueue`] seen as a two-way transport: sends with type `send_type`, receives
/// what `receive` selects.
///
/// ```
/// use ipckit::mq::{MessageQueue, Selector};
/// use ipckit::ns::{Key, Namespace};
/// use ipckit::transport::{Receiver, Sender};
///
/// let dir = tempfile::tempdir().unwrap();
/// let ns = Namespace::at(dir.path()).unwrap();
/// let q = MessageQueue::create(&ns, Key(7), 0o600).unwrap();
/// let mut client = q.endpoint(1, Selector::Type(2));
/// let mut server = MessageQueue::open(&ns, Key(7)).unwrap().endpoint(2, Selector::Type(1));
/// client.send(b"ping").unwrap();
/// assert_eq!(server.recv().unwrap(), b"ping");
/// server.send(b"pong").unwrap();
/// assert_eq!(client.recv().unwrap(), b"pong");
/// ```
#[derive(Debug)]
pub struct QueueEndpoint {
    queue: MessageQueue,
    send_type: i64,
    receive: Selector,
}

impl MessageQueue {
    /// This queue as a [`Sender`] + [`Receiver`]: messages go out with type `send_type`
    /// (≥ 1), and `receive` picks the ones to take.
    pub fn endpoint(self, send_type: i64, receive: Selector) -> QueueEndpoint {
        QueueEndpoint { queue: self, send_type, receive }
    }
}

impl QueueEndpoint {
    /// The queue.
    pub fn queue(&self) -> &MessageQueue {
        &self.queue
    }

    /// The queue back.
    pub fn into_queue(self) -> MessageQueue {
        self.queue
    }
}

fn wait_for(timeout: Option<Duration>) -> Wait {
    match timeout {
        None => Wait::Block,
        Some(d) if d.is_zero() => Wait::NoWait,
        Some(d) => Wait::Timeout(d),
    }
}

fn other(e: impl std::fmt::Display, kind: std::io::ErrorKind) -> TransportError {
    TransportError::Io(std::io::Error::new(kind, e.to_string()))
}

impl Sender for QueueEndpoint {
    fn send_timeout_opt(&mut self, msg: &[u8], timeout: Option<Duration>) -> transport::Result<()> {
        match self.queue.send_with(self.send_type, msg, wait_for(timeout)) {
            Ok(()) => Ok(()),
            Err(SendError::Full(_)) => Err(TransportError::WouldBlock),
            Err(SendError::TimedOut(_)) => Err(TransportError::Timeout),
            Err(SendError::TooBig { len, max }) => Err(TransportError::TooLarge { len, max }),
            Err(SendError::Removed) => Err(TransportError::Removed),
            Err(e @ SendError::PermissionDenied) => {
                Err(other(e, std::io::ErrorKind::PermissionDenied))
            }
            Err(e) => Err(other(e, std::io::ErrorKind::InvalidInput)),
        }
    }
}

impl Receiver for QueueEndpoint {
    fn recv_timeout_opt_into(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> transport::Result<usize> {
        let max = self.queue.max_message_size();
        match self.queue.recv_into(self.receive, buf, max, false, wait_for(timeout)) {
            Ok(_) => Ok(buf.len()),
            Err(RecvError::NoMessage) => Err(TransportError::WouldBlock),
            Err(RecvError::TimedOut) => Err(TransportError::Timeout),
            Err(RecvError::TooBig { len, max }) => Err(TransportError::TooLarge { len, max }),
            Err(RecvError::Removed) => Err(TransportError::Removed),
            Err(e @ RecvError::PermissionDenied) => {
                Err(other(e, std::io::ErrorKind::PermissionDenied))
            }
            Err(e) => Err(other(e, std::io::ErrorKind::InvalidData)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ns::{Key, test_namespace};

    #[test]
    fn both_directions_and_the_three_forms() {
        let (_d, ns) = test_namespace();
        let q = MessageQueue::create(&ns, Key(9), 0o600).unwrap();
        let mut a = q.endpoint(1, Selector::Type(2));
        let mut b = MessageQueue::open(&ns, Key(9)).unwrap().endpoint(2, Selector::Type(1));
        assert!(matches!(b.try_recv(), Err(TransportError::WouldBlock)));
        assert!(matches!(b.recv_timeout(Duration::from_millis(10)), Err(TransportError::Timeout)));
        a.send(b"one").unwrap();
        a.send(b"two").unwrap();
        assert!(matches!(a.try_recv(), Err(TransportError::WouldBlock)), "a sees only type 2");
        assert_eq!(b.recv().unwrap(), b"one");
        assert_eq!(b.try_recv().unwrap(), b"two");
        let big = vec![0u8; a.queue().max_message_size() + 1];
        assert!(matches!(a.send(&big), Err(TransportError::TooLarge { .. })));
        b.queue().remove().unwrap();
        assert!(matches!(a.try_send(b"x"), Err(TransportError::Removed)));
    }
}
