//! Sockets: the echo server and its client, over TCP and over UDP, blocking and non-blocking.
//!
//! For each protocol the demo starts `ipckit net echo-server` as a separate process on a free
//! loopback port, then plays the client: two blocking round trips (send, then wait for the
//! echo), then the course's non-blocking experiment — a receive on a non-blocking socket
//! with nothing to read returns at once with `WouldBlock` (`EAGAIN`) instead of waiting —
//! and a last round trip that waits with a timeout. TCP is connection-oriented: `connect`,
//! then a byte stream that ipckit frames into messages. UDP is connectionless: each message
//! is one datagram, addressed on its own (here the client `connect`s its socket only to fix
//! the peer address).

use crate::Context;
use anyhow::{Context as _, bail, ensure};
use ipckit::net::{Datagrams, Framed};
use ipckit::transport::{Receiver, Sender, TransportError};
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Options of the sockets demo.
#[derive(Debug, clap::Args)]
pub struct Args {}

const LIMIT: Duration = Duration::from_secs(10);

/// Runs the demo for TCP, then for UDP.
pub fn run(ctx: &Context, _a: Args) -> anyhow::Result<()> {
    for proto in ["tcp", "udp"] {
        let (server, addr, output) = start_server(ctx, proto, 3)?;
        let result = if proto == "tcp" { tcp_client(addr) } else { udp_client(addr) };
        let waited = super::super::child::wait_all(vec![server], LIMIT);
        // The server has exited: its output ends, and the copying thread with it.
        let _ = output.join();
        result?;
        waited?;
        println!();
    }
    Ok(())
}

/// Starts `ipckit net echo-server --PROTO 127.0.0.1:0 --count N` and returns it with the
/// address it printed, and the thread that copies its output to ours, indented.
pub fn start_server(
    ctx: &Context,
    proto: &str,
    count: u32,
) -> anyhow::Result<(Child, SocketAddr, std::thread::JoinHandle<()>)> {
    let exe = std::env::current_exe().context("cannot find the ipckit executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["net", "echo-server", &format!("--{proto}"), "127.0.0.1:0", "--count"])
        .arg(count.to_string())
        .stdout(Stdio::piped());
    if let Some(dir) = &ctx.dir {
        cmd.env("IPCKIT_DIR", dir);
    }
    let mut child = cmd.spawn().context("cannot start the echo server")?;
    let out = child.stdout.take().context("no stdout")?;
    let (tx, rx) = mpsc::channel();
    let copier = std::thread::spawn(move || {
        let mut first = true;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("    [server] {line}");
            if first {
                first = false;
                let _ = tx.send(line);
            }
        }
    });
    let line = match rx.recv_timeout(LIMIT) {
        Ok(l) => l,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("the echo server did not say where it listens");
        }
    };
    let addr = line
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("unexpected first line from the echo server: {line:?}"))?;
    Ok((child, addr, copier))
}

fn tcp_client(addr: SocketAddr) -> anyhow::Result<()> {
    println!("TCP: connecting to {addr} (connection-oriented: a handshake first)");
    let stream = TcpStream::connect_timeout(&addr, LIMIT)?;
    stream.set_nodelay(true)?;
    // The course's experiment on a raw non-blocking socket: nothing to read yet.
    stream.set_nonblocking(true)?;
    match (&stream).read(&mut [0u8; 16]) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            println!(
                "TCP: read on an empty non-blocking socket returns at once: {:?} ({e})",
                e.kind()
            )
        }
        other => bail!("expected WouldBlock from an empty non-blocking socket, got {other:?}"),
    }
    let mut conn = Framed::new(stream)?;
    converse(&mut conn, "TCP")
}

fn udp_client(addr: SocketAddr) -> anyhow::Result<()> {
    println!("UDP: sending datagrams to {addr} (connectionless: no handshake)");
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    sock.connect(addr)?;
    sock.set_nonblocking(true)?;
    match sock.recv(&mut [0u8; 16]) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            println!(
                "UDP: recv on an empty non-blocking socket returns at once: {:?} ({e})",
                e.kind()
            )
        }
        other => bail!("expected WouldBlock from an empty non-blocking socket, got {other:?}"),
    }
    let mut d = Datagrams::new(sock)?;
    converse(&mut d, "UDP")
}

/// Two blocking round trips, a `try_recv` that would block, and a round trip with a timeout.
fn converse<T: Sender + Receiver>(t: &mut T, proto: &str) -> anyhow::Result<()> {
    for text in ["hello", "echo?"] {
        t.send(text.as_bytes())?;
        // Blocking receive, bounded so that a lost datagram cannot hang the demo.
        let reply = t.recv_timeout(LIMIT).context("no echo")?;
        ensure!(reply == text.as_bytes(), "the echo differs");
        println!(
            "{proto}: sent {text:?}, blocking receive got {:?}",
            String::from_utf8_lossy(&reply)
        );
    }
    match t.try_recv() {
        Err(TransportError::WouldBlock) => {
            println!("{proto}: try_recv with nothing sent: WouldBlock (the call did not wait)")
        }
        other => bail!("expected WouldBlock, got {other:?}"),
    }
    t.send(b"last one")?;
    let reply = t.recv_timeout(LIMIT).context("no echo")?;
    ensure!(reply == b"last one", "the echo differs");
    println!("{proto}: sent \"last one\", recv_timeout got it back");
    Ok(())
}
