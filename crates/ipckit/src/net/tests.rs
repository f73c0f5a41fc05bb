use super::*;
use crate::pipe::Pipe;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;

const LIMIT: Duration = Duration::from_secs(10);

/// Random messages: mostly small, some around the 64 KiB pipe capacity, a few up to 300 KB.
fn messages(seed: u64, n: usize, max: usize) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let len = match rng.gen_range(0..10) {
                0 => 0,
                1..=6 => rng.gen_range(1..200),
                7 | 8 => rng.gen_range(60_000..70_000),
                _ => rng.gen_range(0..=max),
            }
            .min(max);
            let mut m = vec![0u8; len];
            rng.fill(&mut m[..]);
            m
        })
        .collect()
}

/// Sends `msgs` from a thread through `tx` and checks that `rx` receives them intact, in
/// order, then [`TransportError::Closed`] once the sender is dropped.
fn round_trip<T, R>(tx: T, mut rx: R, msgs: Vec<Vec<u8>>)
where
    T: Sender + Send + 'static,
    R: Receiver,
{
    let (done_tx, done_rx) = mpsc::channel();
    let sent = msgs.clone();
    std::thread::spawn(move || {
        let mut tx = tx;
        for m in &sent {
            tx.send_timeout(m, LIMIT).unwrap();
        }
        drop(tx);
        done_tx.send(()).unwrap();
    });
    let mut buf = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        let n =
            rx.recv_timeout_into(&mut buf, LIMIT).unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(n, m.len(), "message {i}");
        assert!(buf == *m, "message {i} differs");
    }
    done_rx.recv_timeout(LIMIT).expect("sender thread finished");
    assert!(matches!(rx.recv_timeout(LIMIT), Err(TransportError::Closed)));
}

#[test]
fn random_messages_over_a_pipe() {
    let Pipe { reader, writer } = Pipe::new().unwrap();
    round_trip(
        Framed::new(writer).unwrap(),
        Framed::new(reader).unwrap(),
        messages(1, 60, 300_000),
    );
}

#[test]
fn random_messages_over_a_unix_stream() {
    let (a, b) = UnixStream::pair().unwrap();
    round_trip(Framed::new(a).unwrap(), Framed::new(b).unwrap(), messages(2, 60, 300_000));
}

#[test]
fn random_messages_over_tcp_loopback() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    a.set_nodelay(true).unwrap();
    round_trip(Framed::new(a).unwrap(), Framed::new(b).unwrap(), messages(3, 60, 300_000));
}

#[test]
fn random_messages_over_udp_loopback() {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    let (mut a, mut b) = (Datagrams::new(a).unwrap(), Datagrams::new(b).unwrap());
    // One at a time: UDP drops what does not fit the receive buffer.
    for (i, m) in messages(4, 60, DEFAULT_MAX_DATAGRAM).iter().enumerate() {
        a.send_timeout(m, LIMIT).unwrap();
        assert!(b.recv_timeout(LIMIT).unwrap() == *m, "message {i} differs");
    }
    let too_big = vec![0u8; DEFAULT_MAX_DATAGRAM + 1];
    assert!(matches!(a.send(&too_big), Err(TransportError::TooLarge { .. })));
}

#[test]
fn random_messages_over_unix_datagrams() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let (mut a, mut b) = (Datagrams::new(a).unwrap(), Datagrams::new(b).unwrap());
    for (i, m) in messages(5, 40, 60_000).iter().enumerate() {
        a.send_timeout(m, LIMIT).unwrap();
        assert!(b.recv_timeout(LIMIT).unwrap() == *m, "message {i} differs");
    }
}

#[test]
fn switching_transport_needs_no_code_change() {
    fn echo_once(tx: &mut dyn Sender, rx: &mut dyn Receiver) {
        tx.send(b"same code").unwrap();
        assert_eq!(rx.recv_timeout(LIMIT).unwrap(), b"same code");
    }
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Framed::new(a).unwrap(), Framed::new(b).unwrap());
    echo_once(&mut a, &mut b);
    let (a, b) = UnixDatagram::pair().unwrap();
    let (mut a, mut b) = (Datagrams::new(a).unwrap(), Datagrams::new(b).unwrap());
    echo_once(&mut a, &mut b);
    let Pipe { reader, writer } = Pipe::new().unwrap();
    echo_once(&mut Framed::new(writer).unwrap(), &mut Framed::new(reader).unwrap());
}

#[test]
fn truncated_frame_is_reported() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut b = Framed::new(b).unwrap();
    raw.write_all(&100u32.to_le_bytes()).unwrap();
    raw.write_all(&[9u8; 10]).unwrap();
    drop(raw);
    match b.recv_timeout(LIMIT) {
        Err(TransportError::TruncatedFrame { expected: 100, got: 10 }) => {}
        other => panic!("expected a truncated frame, got {other:?}"),
    }
}

#[test]
fn truncated_header_is_reported() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut b = Framed::new(b).unwrap();
    raw.write_all(&[1, 0]).unwrap();
    drop(raw);
    assert!(matches!(
        b.recv_timeout(LIMIT),
        Err(TransportError::TruncatedFrame { expected: HEADER_LEN, got: 2 })
    ));
}

#[test]
fn eof_at_frame_boundary_is_closed() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (Framed::new(a).unwrap(), Framed::new(b).unwrap());
    a.send(b"last").unwrap();
    drop(a);
    assert_eq!(b.recv_timeout(LIMIT).unwrap(), b"last");
    assert!(matches!(b.recv_timeout(LIMIT), Err(TransportError::Closed)));
    assert!(matches!(b.send(b"anyone?"), Err(TransportError::Closed)));
}

#[test]
fn hostile_length_is_refused_before_reading() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut b = Framed::new(b).unwrap().with_max_frame(1024);
    raw.write_all(&u32::MAX.to_le_bytes()).unwrap();
    match b.recv_timeout(LIMIT) {
        Err(TransportError::TooLarge { len, max: 1024 }) => assert_eq!(len, u32::MAX as usize),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(b.buffered_bytes() <= HEADER_LEN);
    let mut a = Framed::new(raw).unwrap().with_max_frame(1024);
    assert!(matches!(a.send(&[0u8; 1025]), Err(TransportError::TooLarge { len: 1025, max: 1024 })));
}

#[test]
fn try_recv_would_block_and_keeps_partial_frame() {
    let (mut raw, b) = UnixStream::pair().unwrap();
    let mut b = Framed::new(b).unwrap();
    assert!(matches!(b.try_recv(), Err(TransportError::WouldBlock)));
    let mut frame = Vec::new();
    encode_frame(b"split in two", usize::MAX, &mut frame).unwrap();
    raw.write_all(&frame[..7]).unwrap();
    assert!(matches!(b.try_recv(), Err(TransportError::WouldBlock)));
    assert_eq!(b.buffered_bytes(), 7);
    raw.write_all(&frame[7..]).unwrap();
    assert_eq!(b.recv_timeout(LIMIT).unwrap(), b"split in two");
    let t = Instant::now();
    assert!(matches!(b.recv_timeout(Duration::from_millis(20)), Err(TransportError::Timeout)));
    assert!(t.elapsed() >= Duration::from_millis(20));
}

#[test]
fn try_send_would_block_on_full_stream_and_loses_nothing() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, b) = (Framed::new(a).unwrap(), Framed::new(b).unwrap());
    let msg = vec![5u8; 10_000];
    let mut accepted = 0;
    loop {
        match a.try_send(&msg) {
            Ok(()) => accepted += 1,
            Err(TransportError::WouldBlock) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(accepted < 10_000, "the socket buffer never filled");
    }
    let (count_tx, count_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut b = b;
        let mut n = 0;
        while let Ok(m) = b.recv_timeout(LIMIT) {
            assert_eq!(m.len(), 10_000);
            n += 1;
        }
        count_tx.send(n).unwrap();
    });
    a.flush_timeout(Some(LIMIT)).unwrap();
    assert_eq!(a.pending_bytes(), 0);
    drop(a);
    assert_eq!(count_rx.recv_timeout(LIMIT).unwrap(), accepted);
}

#[test]
fn empty_nonblocking_udp_socket_would_block() {
    // What the course shows with a raw socket ...
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    assert_eq!(s.recv(&mut [0u8; 16]).unwrap_err().kind(), io::ErrorKind::WouldBlock);
    // ... and through ipckit.
    s.connect(s.local_addr().unwrap()).unwrap();
    let mut d = Datagrams::new(s).unwrap();
    assert!(matches!(d.try_recv(), Err(TransportError::WouldBlock)));
    d.send(b"to myself").unwrap();
    assert_eq!(d.recv_timeout(LIMIT).unwrap(), b"to myself");
}

#[test]
fn empty_nonblocking_tcp_socket_would_block() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    let mut b = Framed::new(b).unwrap();
    assert!(matches!(b.try_recv(), Err(TransportError::WouldBlock)));
    drop(a);
    assert!(matches!(b.recv_timeout(LIMIT), Err(TransportError::Closed)));
}

#[test]
fn datagram_checks() {
    assert_eq!(decode_datagram(&[2, 0, 0, 0, 7, 8], 10).unwrap(), &[7, 8]);
    assert!(matches!(
        decode_datagram(&[5, 0, 0, 0, 7, 8], 10),
        Err(TransportError::TruncatedFrame { expected: 5, got: 2 })
    ));
    assert!(matches!(
        decode_datagram(&[5, 0], 10),
        Err(TransportError::TruncatedFrame { expected: HEADER_LEN, got: 2 })
    ));
    assert!(matches!(decode_datagram(&[50, 0, 0, 0], 10), Err(TransportError::TooLarge { .. })));
    assert!(matches!(decode_datagram(&[1, 0, 0, 0, 7, 8], 10), Err(TransportError::Io(_))));
}

#[test]
fn cut_datagram_is_a_truncated_frame() {
    let (a, b) = UnixDatagram::pair().unwrap();
    let mut b = Datagrams::new(b).unwrap();
    a.send(&[200, 0, 0, 0, 1, 2, 3]).unwrap();
    assert!(matches!(
        b.recv_timeout(LIMIT),
        Err(TransportError::TruncatedFrame { expected: 200, got: 3 })
    ));
}

mod chunking {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// However the byte stream is cut into writes, and however `try_recv` calls fall
        /// between them, every message comes out whole and in order.
        #[test]
        fn frames_survive_any_chunking(
            msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..12),
            cuts in proptest::collection::vec(1usize..700, 1..40),
        ) {
            let (mut raw, b) = UnixStream::pair().unwrap();
            let mut b = Framed::new(b).unwrap();
            let mut stream = Vec::new();
            for m in &msgs {
                encode_frame(m, usize::MAX, &mut stream).unwrap();
            }
            let mut got = Vec::new();
            let mut pos = 0;
            let mut cut = cuts.iter().cycle();
            while pos < stream.len() {
                let n = (*cut.next().unwrap()).min(stream.len() - pos);
                raw.write_all(&stream[pos..pos + n]).unwrap();
                pos += n;
                loop {
                    match b.try_recv() {
                        Ok(m) => got.push(m),
                        Err(TransportError::WouldBlock) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            drop(raw);
            prop_assert!(matches!(b.recv_timeout(LIMIT), Err(TransportError::Closed)));
            prop_assert_eq!(got, msgs);
        }
    }
}
