//! The message-passing commands, run as the built binary: `net`, `demo pipe|fifo|sockets`,
//! `compare`, and the tour's `pipes` and `sockets` steps. Every process is bounded by a
//! timeout and killed when it runs over; only loopback addresses are used.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(30);

fn ipckit() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ipckit"));
    c.env_remove("IPCKIT_DIR");
    c
}

/// Waits for `child` at most `limit`, collecting its output; kills it on timeout.
fn finish(mut child: Child, limit: Duration) -> Output {
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_end(&mut v);
        }
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_end(&mut v);
        }
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process timed out after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output { status, stdout: t_out.join().unwrap(), stderr: t_err.join().unwrap() }
}

fn run(args: &[&str]) -> Output {
    let child = ipckit().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    finish(child, LIMIT)
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "ipckit {args:?} failed with {}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Starts an echo server on a free loopback port; returns it with its address.
fn echo_server(proto: &str, count: u32) -> (Child, String) {
    let mut child = ipckit()
        .args(["net", "echo-server", proto, "127.0.0.1:0", "--count", &count.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        if let Some(Ok(first)) = lines.next() {
            let _ = tx.send(first);
        }
        for _ in lines {} // drain, so the server never blocks on a full pipe
    });
    let Ok(first) = rx.recv_timeout(LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the echo server did not print where it listens");
    };
    let proto_word = proto.trim_start_matches("--");
    let prefix = format!("echo-server: listening on {proto_word} ");
    assert!(first.starts_with(&prefix), "unexpected first line {first:?}");
    let addr = first[prefix.len()..].to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    (child, addr)
}

fn echo_round_trips(proto: &str) {
    let (server, addr) = echo_server(proto, 2);
    for text in ["first message", "second, with spaces and ünïcode"] {
        let out = ok(&["net", "send", proto, &addr, text, "--timeout", "10"]);
        assert_eq!(out, format!("{text}\n"));
    }
    // After --count messages the server exits by itself, successfully.
    let o = finish(server, LIMIT);
    assert!(o.status.success(), "echo server: {}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn tcp_echo_server_and_client() {
    echo_round_trips("--tcp");
}

#[test]
fn udp_echo_server_and_client() {
    echo_round_trips("--udp");
}

#[test]
fn send_without_server_exits_1() {
    // A port that was free a moment ago: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let o = run(&["net", "send", "--tcp", &addr, "hello", "--timeout", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no echo server"));
}

#[test]
fn net_needs_exactly_one_protocol() {
    assert_eq!(run(&["net", "send", "127.0.0.1:1", "x"]).status.code(), Some(2));
    assert_eq!(run(&["net", "send", "--tcp", "--udp", "127.0.0.1:1", "x"]).status.code(), Some(2));
    assert_eq!(run(&["net", "send", "--tcp", "not an address", "x"]).status.code(), Some(2));
}

#[test]
fn demo_pipe() {
    let out = ok(&["demo", "pipe", "--messages", "4"]);
    for i in 0..4 {
        assert!(out.contains(&format!("read \"message {i} from the parent\"")), "{out}");
    }
    assert!(out.contains("end of file after 4 messages"), "{out}");
}

#[test]
fn demo_fifo() {
    let out = ok(&["demo", "fifo", "--messages", "3"]);
    assert!(out.contains("ENXIO"), "{out}");
    for i in 0..3 {
        assert!(out.contains(&format!("read \"message {i} through the FIFO\"")), "{out}");
    }
    assert!(out.contains("end of file after 3 messages"), "{out}");
    // The demo's scratch directory (and FIFO) is gone.
    let path = out.lines().find_map(|l| l.strip_prefix("parent: made the FIFO ")).unwrap();
    assert!(!std::path::Path::new(path).exists());
}

#[test]
fn demo_sockets() {
    let out = ok(&["demo", "sockets"]);
    for proto in ["TCP", "UDP"] {
        assert!(out.contains(&format!("{proto}: sent \"hello\", blocking receive got \"hello\"")));
        assert!(out.contains(&format!("{proto}: try_recv with nothing sent: WouldBlock")));
    }
    assert!(out.contains("empty non-blocking socket returns at once: WouldBlock"), "{out}");
}

#[test]
fn compare_json_has_every_field() {
    let out = ok(&["compare", "--json", "--rounds", "20", "--kib", "64"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = v.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["mechanism"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["shared memory", "message queue", "pipe", "named pipe", "unix socket", "tcp", "udp"]
    );
    for r in rows {
        for f in [
            "bidirectional",
            "related_processes_needed",
            "crosses_machines",
            "survives_processes",
            "synchronizes_itself",
        ] {
            assert!(r[f].is_boolean(), "{f} in {r}");
        }
        assert!(["memory", "message"].contains(&r["based"].as_str().unwrap()));
        assert!(r["latency_us"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["throughput_mb_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert_eq!(rows[0]["based"], "memory");
    assert_eq!(rows[0]["synchronizes_itself"], false);
    assert_eq!(rows[1]["survives_processes"], true, "a message queue outlives its processes");
    assert_eq!(rows[2]["related_processes_needed"], true);
    assert_eq!(rows[5]["crosses_machines"], true);
}

#[test]
fn compare_table() {
    let out = ok(&["compare", "--rounds", "10", "--kib", "64"]);
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("mechanism") && header.contains("latency us"), "{header}");
    assert!(out.lines().any(|l| l.starts_with("named pipe ")), "{out}");
}

#[test]
fn tour_pipes_and_sockets_steps() {
    let out = ok(&["tour", "--step", "pipes", "--step", "sockets"]);
    assert!(out.contains("== 1/2: Pipes"), "{out}");
    assert!(out.contains("== 2/2: Sockets"), "{out}");
    assert!(out.contains("Tour done"), "{out}");
}
