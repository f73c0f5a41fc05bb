//! Exit codes and the one line printed on failure.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also: stdout closed early, e.g. by `head`) |
//! | 1 | the object asked for is absent, or the operation would block with `--nowait` |
//! | 2 | bad input or any other error |

use std::fmt;
use std::process::ExitCode;

/// An error that carries its exit code. Library errors are mapped into it by the commands
/// (see [`Failure::absent`] and [`Failure::bad_input`]); anything else exits 2.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: the thing asked for is absent, or would block.
    pub fn absent(message: impl Into<String>) -> anyhow::Error {
        Failure { code: 1, message: message.into() }.into()
    }

    /// Exit 2: bad input or another error.
    pub fn bad_input(message: impl Into<String>) -> anyhow::Error {
        Failure { code: 2, message: message.into() }.into()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// Prints `e` as one line on stderr and returns its exit code.
pub fn report(e: &anyhow::Error) -> ExitCode {
    for cause in e.chain() {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
        }
    }
    let code = e.downcast_ref::<Failure>().map_or(2, |f| f.code);
    let line: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    eprintln!("ipckit: {}", line.join(": "));
    ExitCode::from(code)
}
