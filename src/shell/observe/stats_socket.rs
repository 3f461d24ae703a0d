//! Smokescreen's stats socket: HTTP on the Unix socket
//! `DIR/track-PID.sock` (file mode from `--stats-socket-file-mode`) that
//! answers every request with the JSON list of open tunnels.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::shell::observe::conn_track;
use crate::shell::runtime::{self, ReadExt as _, UnixListener, UnixStream, WriteExt as _};

/// Largest request head read; a longer one gets 431.
const MAX_HEAD: usize = 8 * 1024;
/// A client gets this long to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause after a failed accept (EMFILE) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Where the socket goes for this process.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(format!("track-{}.sock", std::process::id()))
}

/// Bind the socket (failing if the file exists, as Smokescreen does), set
/// its mode, turn tracking on and serve it in the background.
pub fn start(dir: &Path, mode: u32) -> std::io::Result<PathBuf> {
    let path = path(dir);
    let std_listener = std::os::unix::net::UnixListener::bind(&path)?;
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    conn_track::get().enable();
    let listener = UnixListener::from(std_listener);
    runtime::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    runtime::spawn(answer(stream));
                }
                // Out of file descriptors and the like: back off, do not spin.
                Err(_) => runtime::sleep(ACCEPT_BACKOFF).await,
            }
        }
    });
    Ok(path)
}

/// Read one request head (bounded in size and time), answer, close.
async fn answer(stream: UnixStream) {
    let mut stream = stream;
    let head = runtime::deadline(READ_TIMEOUT, read_head(&mut stream)).await;
    let response = match head {
        Some(Some(is_head_method)) => {
            let body = conn_track::get().json();
            response(200, "OK", &body, is_head_method)
        }
        Some(None) => response(431, "Request Header Fields Too Large", "", false),
        None => return,
    };
    let _ = stream.write_all(response.as_bytes()).await;
}

/// `Some(is HEAD)` once a whole head is in; `None` when it is too large or
/// the client went away.
async fn read_head(stream: &mut UnixStream) -> Option<bool> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        if buf.len() > MAX_HEAD {
            return None;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(chunk.get(..n)?),
        }
    }
    Some(buf.starts_with(b"HEAD "))
}

fn response(status: u16, reason: &str, body: &str, head_only: bool) -> String {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    out
}
