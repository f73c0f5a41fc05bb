//! `pipe-vs-socket`: ipckit's framed messages between two processes over a pipe pair, a Unix
//! stream socket, TCP loopback and UDP loopback; with a raw pipe pair (no framing, no
//! `poll`) as the baseline that shows what the framing layer costs.
//!
//! Two numbers per transport, the child forked (and pinned to another core when there is one):
//!
//! * **round trip** of a 64-byte message (the child echoes it), median over samples of
//!   `ROUNDS` round trips each;
//! * **throughput** of 4 KiB messages from parent to child, the child acknowledging every
//!   `WINDOW`-th (so UDP stays within its socket buffer and drops nothing), median MB/s.

use crate::harness::{Placement, Report, fork_child, median, pin_to_cpu, unpin, wait_child};
use ipckit::net::{Datagrams, Framed};
use ipckit::pipe::Pipe;
use ipckit::transport::{Pair, Receiver, Sender};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const ROUNDS: u64 = 2_000;
const BULK: u64 = 2_048; // 8 MiB per sample
const SAMPLES: usize = 5;
const SMALL: usize = 64;
const BIG: usize = 4096;
const WINDOW: u64 = 16;
const LIMIT: Duration = Duration::from_secs(60);

/// One side of a transport, for the measuring loops.
trait Side {
    fn send(&mut self, m: &[u8]);
    /// Receives one message into `buf`; a raw transport reads exactly `buf.len()` bytes, which
    /// the loops set to the size of the message expected.
    fn recv(&mut self, buf: &mut Vec<u8>);
}

/// A framed ipckit transport.
struct Ipc<T>(T);

impl<T: Sender + Receiver> Side for Ipc<T> {
    fn send(&mut self, m: &[u8]) {
        self.0.send_timeout(m, LIMIT).expect("send");
    }
    fn recv(&mut self, buf: &mut Vec<u8>) {
        self.0.recv_timeout_into(buf, LIMIT).expect("recv");
    }
}

/// Raw blocking pipes: the message size is known in advance, so no framing is needed.
struct Raw<R, W> {
    r: R,
    w: W,
}

impl<R: Read, W: Write> Side for Raw<R, W> {
    fn send(&mut self, m: &[u8]) {
        self.w.write_all(m).expect("write");
    }
    fn recv(&mut self, buf: &mut Vec<u8>) {
        self.r.read_exact(buf).expect("read");
    }
}

/// Runs the child's loop in a forked process and the parent's measurements here.
fn measure<P: Side, C: Side>(p: Placement, mut parent: P, child: impl FnOnce() -> C) -> (f64, f64) {
    let total_rounds = (SAMPLES as u64 + 1) * ROUNDS;
    let total_bulk = (SAMPLES as u64 + 1) * BULK;
    let pid = fork_child(Some(p.child_cpu()), || {
        let mut c = child();
        let mut buf = vec![0u8; SMALL];
        for _ in 0..total_rounds {
            c.recv(&mut buf);
            c.send(&buf);
        }
        buf.resize(BIG, 0);
        for i in 0..total_bulk {
            c.recv(&mut buf);
            if (i + 1) % WINDOW == 0 {
                c.send(&[0u8; SMALL]);
            }
        }
    });
    pin_to_cpu(p.parent_cpu());
    let small = [1u8; SMALL];
    let big = vec![2u8; BIG];
    let mut buf = vec![0u8; SMALL];
    let mut rtt: Vec<f64> = (0..=SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..ROUNDS {
                parent.send(&small);
                parent.recv(&mut buf);
            }
            t.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64
        })
        .skip(1) // warm-up
        .collect();
    let mut mbs: Vec<f64> = (0..=SAMPLES)
        .map(|_| {
            let t = Instant::now();
            for i in 0..BULK {
                parent.send(&big);
                if (i + 1) % WINDOW == 0 {
                    parent.recv(&mut buf);
                }
            }
            (BULK as usize * BIG) as f64 / t.elapsed().as_secs_f64() / 1e6
        })
        .skip(1)
        .collect();
    unpin();
    drop(parent);
    assert!(wait_child(pid, LIMIT), "pipe-vs-socket child failed");
    (median(&mut rtt), median(&mut mbs))
}

fn framed_pipes(p: Placement) -> (f64, f64) {
    let (down, up) = (Pipe::new().unwrap(), Pipe::new().unwrap());
    let parent = Pair {
        sender: Framed::new(down.writer).unwrap(),
        receiver: Framed::new(up.reader).unwrap(),
    };
    let (cr, cw) = (down.reader, up.writer);
    measure(p, Ipc(parent), move || {
        Ipc(Pair { sender: Framed::new(cw).unwrap(), receiver: Framed::new(cr).unwrap() })
    })
}

fn raw_pipes(p: Placement) -> (f64, f64) {
    let (down, up) = (Pipe::new().unwrap(), Pipe::new().unwrap());
    let parent = Raw { r: up.reader, w: down.writer };
    let (cr, cw) = (down.reader, up.writer);
    measure(p, parent, move || Raw { r: cr, w: cw })
}

fn unix_stream(p: Placement) -> (f64, f64) {
    let (a, b) = UnixStream::pair().unwrap();
    measure(p, Ipc(Framed::new(a).unwrap()), move || Ipc(Framed::new(b).unwrap()))
}

fn tcp(p: Placement) -> (f64, f64) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    a.set_nodelay(true).unwrap();
    b.set_nodelay(true).unwrap();
    measure(p, Ipc(Framed::new(a).unwrap()), move || Ipc(Framed::new(b).unwrap()))
}

fn udp(p: Placement) -> (f64, f64) {
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    a.connect(b.local_addr().unwrap()).unwrap();
    b.connect(a.local_addr().unwrap()).unwrap();
    measure(p, Ipc(Datagrams::new(a).unwrap()), move || Ipc(Datagrams::new(b).unwrap()))
}

pub fn run(r: &mut Report) -> anyhow::Result<()> {
    let p = Placement::all()[0];
    let rtt = format!("round trip 64 B, {}", p.label());
    let thr = format!("4 KiB msgs (ack/{WINDOW}), {}", p.label());
    type Case = (&'static str, fn(Placement) -> (f64, f64));
    let cases: [Case; 5] = [
        ("pipe pair, raw (baseline)", raw_pipes),
        ("pipe pair, ipckit Framed", framed_pipes),
        ("unix stream, ipckit Framed", unix_stream),
        ("TCP loopback, ipckit Framed", tcp),
        ("UDP loopback, ipckit Datagrams", udp),
    ];
    for (name, f) in cases {
        let (us, mbs) = f(p);
        r.push(name, &rtt, us, "us");
        r.push(name, &thr, mbs, "MB/s");
    }
    Ok(())
}
