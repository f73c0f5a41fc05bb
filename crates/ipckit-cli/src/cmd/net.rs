//! `ipckit net echo-server|send`: the course's echo server and client, over TCP or UDP.
//!
//! Every message is an ipckit frame (a little-endian `u32` length, then the bytes; see
//! `ipckit::net`): over TCP the frame marks where a message ends in the byte stream, over UDP
//! it lets a cut datagram be detected. The server echoes each message back to its sender.
//! Both default to the loopback address, so nothing leaves the machine unless asked.

use crate::Context;
use crate::exit::Failure;
use anyhow::{Context as _, bail};
use clap::Subcommand;
use ipckit::net::{Datagrams, Framed, decode_datagram, encode_frame};
use ipckit::transport::{Receiver, Sender, TransportError};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::Duration;

/// The default address of the echo server: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:7878";

/// Arguments of `ipckit net`.
#[derive(Debug, clap::Args)]
pub struct NetArgs {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Echo every message back to its sender; prints where it listens
    EchoServer(ServerArgs),
    /// Send TEXT to an echo server and print the reply
    Send(SendArgs),
}

/// `--tcp` or `--udp`.
#[derive(Debug, Clone, Copy, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Proto {
    /// Connection-oriented: a TCP stream (framed messages)
    #[arg(long)]
    tcp: bool,
    /// Connectionless: UDP datagrams (one framed message each)
    #[arg(long)]
    udp: bool,
}

#[derive(Debug, clap::Args)]
struct ServerArgs {
    #[command(flatten)]
    proto: Proto,
    /// Address to listen on (port 0: any free port)
    #[arg(default_value = DEFAULT_ADDR)]
    addr: String,
    /// Exit after echoing this many messages
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    #[command(flatten)]
    proto: Proto,
    /// Address of the echo server (e.g. 127.0.0.1:7878, the server's default)
    addr: String,
    /// The message
    text: String,
    /// Seconds to wait for the connection and for the reply
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
}

/// Runs `ipckit net`.
pub fn run(_ctx: &Context, a: NetArgs) -> anyhow::Result<ExitCode> {
    match a.verb {
        Verb::EchoServer(s) => {
            let addr = resolve(&s.addr)?;
            if s.proto.tcp { echo_tcp(addr, s.count)? } else { echo_udp(addr, s.count)? }
        }
        Verb::Send(s) => {
            let addr = resolve(&s.addr)?;
            if !(s.timeout > 0.0 && s.timeout < 1e6) {
                return Err(Failure::bad_input("--timeout must be a positive number of seconds"));
            }
            let timeout = Duration::from_secs_f64(s.timeout);
            let reply = if s.proto.tcp {
                send_tcp(addr, s.text.as_bytes(), timeout)
            } else {
                send_udp(addr, s.text.as_bytes(), timeout)
            }?;
            let mut out = std::io::stdout().lock();
            out.write_all(&reply)?;
            out.write_all(b"\n")?;
            if reply != s.text.as_bytes() {
                bail!("the reply differs from the message sent");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `HOST:PORT` (a name such as `localhost` is resolved; the first address is used).
pub fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    let mut it = addr
        .to_socket_addrs()
        .map_err(|e| Failure::bad_input(format!("bad address {addr:?}: {e}")))?;
    it.next().ok_or_else(|| Failure::bad_input(format!("address {addr:?} resolves to nothing")))
}

fn echo_tcp(addr: SocketAddr, count: Option<u64>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    println!("echo-server: listening on tcp {}", listener.local_addr()?);
    let mut echoed = 0;
    let mut buf = Vec::new();
    while count.is_none_or(|n| echoed < n) {
        let (stream, peer) = listener.accept().context("accept failed")?;
        stream.set_nodelay(true)?;
        let mut conn = Framed::new(stream)?;
        println!("echo-server: {peer} connected");
        while count.is_none_or(|n| echoed < n) {
            match conn.recv_into(&mut buf) {
                Ok(n) => {
                    conn.send(&buf)?;
                    echoed += 1;
                    println!("echo-server: echoed {n} bytes to {peer}");
                }
                Err(TransportError::Closed) => break,
                Err(e) => {
                    eprintln!("echo-server: dropping {peer}: {e}");
                    break;
                }
            }
        }
        conn.flush_timeout(Some(Duration::from_secs(5)))?;
        println!("echo-server: {peer} done");
    }
    println!("echo-server: {echoed} messages echoed, exiting");
    Ok(())
}

fn echo_udp(addr: SocketAddr, count: Option<u64>) -> anyhow::Result<()> {
    let sock = UdpSocket::bind(addr).with_context(|| format!("cannot bind {addr}"))?;
    println!("echo-server: listening on udp {}", sock.local_addr()?);
    let max = ipckit::net::DEFAULT_MAX_DATAGRAM;
    let mut buf = vec![0u8; ipckit::net::UDP_MAX_PAYLOAD + 1];
    let mut frame = Vec::new();
    let mut echoed = 0;
    while count.is_none_or(|n| echoed < n) {
        let (n, peer) = sock.recv_from(&mut buf).context("recvfrom failed")?;
        match decode_datagram(&buf[..n], max) {
            Ok(msg) => {
                frame.clear();
                encode_frame(msg, max, &mut frame)?;
                sock.send_to(&frame, peer).context("sendto failed")?;
                echoed += 1;
                println!("echo-server: echoed {} bytes to {peer}", msg.len());
            }
            Err(e) => eprintln!("echo-server: ignoring a datagram from {peer}: {e}"),
        }
    }
    println!("echo-server: {echoed} messages echoed, exiting");
    Ok(())
}

/// What a client failure means for the exit code: no server or no answer is "absent" (1).
fn client_error(addr: SocketAddr, e: TransportError) -> anyhow::Error {
    match e {
        TransportError::Closed => Failure::absent(format!("no echo server at {addr}")),
        TransportError::Timeout => Failure::absent(format!("no reply from {addr} in time")),
        e => anyhow::Error::new(e).context(format!("talking to {addr}")),
    }
}

fn send_tcp(addr: SocketAddr, msg: &[u8], timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| client_error(addr, TransportError::from_io(e)))?;
    stream.set_nodelay(true)?;
    let mut conn = Framed::new(stream)?;
    conn.send_timeout(msg, timeout).map_err(|e| client_error(addr, e))?;
    conn.recv_timeout(timeout).map_err(|e| client_error(addr, e))
}

fn send_udp(addr: SocketAddr, msg: &[u8], timeout: Duration) -> anyhow::Result<Vec<u8>> {
    let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse()? } else { "[::]:0".parse()? };
    let sock = UdpSocket::bind(local)?;
    sock.connect(addr)?;
    let mut d = Datagrams::new(sock)?;
    d.send_timeout(msg, timeout).map_err(|e| client_error(addr, e))?;
    d.recv_timeout(timeout).map_err(|e| client_error(addr, e))
}
