use super::*;
use std::io::ErrorKind;
use std::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(10);

/// Waits for `child` at most `LIMIT`; kills it and panics on timeout.
fn wait_bounded(mut child: Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child process timed out");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Reads until end of file, failing after `LIMIT`.
fn read_to_end_bounded(r: &mut PipeReader) -> Vec<u8> {
    r.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "no end of file in time");
                sys::poll_fd(r.as_fd(), sys::Readiness::Read, Some(left)).unwrap();
            }
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

#[test]
fn ends_are_close_on_exec_by_default() {
    let p = Pipe::new().unwrap();
    assert!(!p.reader.is_inheritable().unwrap());
    assert!(!p.writer.is_inheritable().unwrap());
    p.reader.set_inheritable(true).unwrap();
    assert!(p.reader.is_inheritable().unwrap());
    p.reader.set_inheritable(false).unwrap();
    assert!(!p.reader.is_inheritable().unwrap());
}

#[test]
fn spawned_child_reads_inherited_end_by_number() {
    let Pipe { reader, mut writer } = Pipe::new().unwrap();
    let Pipe { reader: mut out_r, writer: out_w } = Pipe::new().unwrap();
    reader.set_inheritable(true).unwrap();
    let fd = reader.as_raw_fd();
    // The child copies what arrives on descriptor `fd` to its stdout.
    let child =
        Command::new("sh").arg("-c").arg(format!("exec cat <&{fd}")).stdout(out_w).spawn().unwrap();
    drop(reader); // only the child holds the read end now
    writer.write_all(b"parent to child").unwrap();
    drop(writer); // end of file for the child
    let got = read_to_end_bounded(&mut out_r);
    assert!(wait_bounded(child).success());
    assert_eq!(got, b"parent to child");
}

#[test]
fn spawned_child_reads_its_stdin_from_the_pipe() {
    let Pipe { reader, mut writer } = Pipe::new().unwrap();
    let Pipe { reader: mut out_r, writer: out_w } = Pipe::new().unwrap();
    let child = Command::new("cat").stdin(reader).stdout(out_w).spawn().unwrap();
    writer.write_all(b"through stdin").unwrap();
    drop(writer);
    let got = read_to_end_bounded(&mut out_r);
    assert!(wait_bounded(child).success());
    assert_eq!(got, b"through stdin");
}

#[test]
fn end_not_made_inheritable_stays_in_the_parent() {
    let Pipe { reader, writer } = Pipe::new().unwrap();
    let fd = writer.as_raw_fd();
    // The child tries to write to `fd`; as it is close-on-exec, the shell reports an error.
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("echo leak >&{fd}"))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(!wait_bounded(child).success());
    drop(writer);
    let mut r = reader;
    assert_eq!(read_to_end_bounded(&mut r), b"");
}

#[test]
fn empty_nonblocking_pipe_would_block() {
    let Pipe { mut reader, writer } = Pipe::new().unwrap();
    reader.set_nonblocking(true).unwrap();
    assert!(reader.is_nonblocking().unwrap());
    let err = reader.read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WouldBlock);
    drop(writer);
    assert_eq!(reader.read(&mut [0u8; 8]).unwrap(), 0, "no writer: end of file");
}

#[test]
fn full_nonblocking_pipe_would_block_at_capacity() {
    let Pipe { reader, mut writer } = Pipe::new().unwrap();
    let cap = writer.set_capacity(4096).unwrap();
    writer.set_nonblocking(true).unwrap();
    let mut written = 0;
    let chunk = [7u8; 512];
    loop {
        match writer.write(&chunk) {
            Ok(n) => written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(written, cap);
    drop(reader);
    assert_eq!(writer.write(&chunk).unwrap_err().kind(), ErrorKind::BrokenPipe);
}

#[test]
fn capacity_query_and_resize() {
    let p = Pipe::new().unwrap();
    let cap = p.reader.capacity().unwrap();
    assert!(cap >= 4096);
    assert_eq!(p.writer.capacity().unwrap(), cap, "both ends see one pipe");
    let set = p.writer.set_capacity(3 * 4096).unwrap();
    assert_eq!(set, 4 * 4096, "rounded up to a power-of-two number of pages");
    assert_eq!(p.reader.capacity().unwrap(), set);
    assert!(matches!(
        p.writer.set_capacity(usize::MAX),
        Err(PipeError::InvalidCapacity { requested: usize::MAX })
    ));
    // Shrinking below the data in the pipe is refused.
    let mut w = &p.writer;
    w.write_all(&[1u8; 8192]).unwrap();
    assert!(matches!(p.writer.set_capacity(4096), Err(PipeError::CapacityInUse { .. })));
}

#[test]
fn not_a_pipe_is_refused() {
    let f = tempfile::tempfile().unwrap();
    let err = PipeReader::try_from(OwnedFd::from(f)).unwrap_err();
    assert!(matches!(err, PipeError::NotAFifo(_)), "{err}");
}

#[test]
fn fifo_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let fifo = NamedPipe::create(&path, 0o600).unwrap();
    assert!(matches!(NamedPipe::create(&path, 0o600), Err(PipeError::Exists(_))));
    assert!(matches!(fifo.try_open_writer(), Err(PipeError::NoReader)));
    assert!(matches!(fifo.open_writer_timeout(Duration::from_millis(30)), Err(PipeError::Timeout)));
    assert!(matches!(fifo.open_reader_timeout(Duration::from_millis(30)), Err(PipeError::Timeout)));
    let file = dir.path().join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(NamedPipe::at(&file), Err(PipeError::NotAFifo(_))));
    assert!(matches!(NamedPipe::at(&dir.path().join("missing")), Err(PipeError::NotFound(_))));
    assert!(matches!(
        NamedPipe::create(&dir.path().join("no/such/dir"), 0o600),
        Err(PipeError::NotFound(_))
    ));
    assert_eq!(NamedPipe::at(&path).unwrap(), fifo);
    fifo.remove().unwrap();
    assert!(!path.exists());
}

#[test]
fn fifo_nonblocking_reader_then_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = NamedPipe::create(&dir.path().join("f"), 0o600).unwrap();
    let mut r = fifo.try_open_reader().unwrap();
    assert!(r.is_nonblocking().unwrap());
    let mut w = fifo.try_open_writer().unwrap(); // a reader exists now
    assert_eq!(r.read(&mut [0u8; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    w.write_all(b"abc").unwrap();
    drop(w);
    assert_eq!(read_to_end_bounded(&mut r), b"abc");
}

#[test]
fn fifo_between_unrelated_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    let fifo = NamedPipe::create(&path, 0o600).unwrap();
    // Another program, which inherits nothing but the path name.
    let writer = Command::new("sh")
        .arg("-c")
        .arg("printf 'over the fifo' > \"$1\"")
        .arg("sh")
        .arg(&path)
        .spawn()
        .unwrap();
    let mut r = fifo.open_reader_timeout(LIMIT).unwrap();
    assert!(!r.is_nonblocking().unwrap());
    let got = read_to_end_bounded(&mut r);
    assert!(wait_bounded(writer).success());
    assert_eq!(got, b"over the fifo");
}

#[test]
fn fifo_reader_timeout_returns_when_a_writer_opens_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = NamedPipe::create(&dir.path().join("f"), 0o600).unwrap();
    let f2 = fifo.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let w = f2.open_writer_timeout(LIMIT).unwrap();
        // Hold the write end until the reader is done.
        let _ = rx.recv_timeout(LIMIT);
        drop(w);
    });
    let mut r = fifo.open_reader_timeout(LIMIT).unwrap();
    r.set_nonblocking(true).unwrap();
    assert_eq!(r.read(&mut [0u8; 4]).unwrap_err().kind(), ErrorKind::WouldBlock);
    tx.send(()).unwrap();
    assert_eq!(read_to_end_bounded(&mut r), b"");
    drop(r);
    // After a timeout the FIFO is usable again, with no stale reader left behind.
    assert!(matches!(fifo.open_reader_timeout(Duration::from_millis(20)), Err(PipeError::Timeout)));
    assert!(matches!(fifo.try_open_writer(), Err(PipeError::NoReader)));
}
