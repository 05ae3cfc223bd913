//! The job log: stdout and stderr of a job, interleaved, bounded.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use crate::LogSink;

/// A bounded in-memory log shared by a job's stdout and stderr.
///
/// Past `capacity` bytes, further output is counted and discarded, so a job
/// that prints megabytes keeps running with a truncated log; with
/// `kill_on_overflow` the write traps instead and the job ends `log_limit`.
#[derive(Clone)]
pub(crate) struct LogPipe {
    inner: Arc<Mutex<LogBuf>>,
    sink: Option<LogSink>,
}

#[derive(Default)]
struct LogBuf {
    bytes: Vec<u8>,
    capacity: usize,
    dropped: u64,
    kill_on_overflow: bool,
}

/// The log's content once the job is over.
pub(crate) struct LogContents {
    pub(crate) bytes: Vec<u8>,
    pub(crate) dropped: u64,
}

/// Marks a write past the log limit when the job is configured to stop on it.
#[derive(Debug, thiserror::Error)]
#[error("the job wrote more than {0} bytes to its log")]
pub(crate) struct LogOverflow(pub(crate) usize);

impl LogPipe {
    pub(crate) fn new(capacity: usize, kill_on_overflow: bool, sink: Option<LogSink>) -> LogPipe {
        LogPipe {
            sink,
            inner: Arc::new(Mutex::new(LogBuf {
                bytes: Vec::new(),
                capacity,
                dropped: 0,
                kill_on_overflow,
            })),
        }
    }

    /// Appends what fits; returns whether anything was cut off.
    fn append(&self, data: &[u8]) -> Result<(), LogOverflow> {
        let mut log = match self.inner.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        };
        let room = log.capacity.saturating_sub(log.bytes.len());
        let kept = room.min(data.len());
        log.bytes.extend_from_slice(&data[..kept]);
        if kept > 0
            && let Some(sink) = &self.sink
        {
            sink(&data[..kept]);
        }
        let cut = (data.len() - kept) as u64;
        log.dropped += cut;
        if cut > 0 && log.kill_on_overflow {
            return Err(LogOverflow(log.capacity));
        }
        Ok(())
    }

    pub(crate) fn contents(&self) -> LogContents {
        let log = match self.inner.lock() {
            Ok(log) => log,
            Err(poisoned) => poisoned.into_inner(),
        };
        LogContents {
            bytes: log.bytes.clone(),
            dropped: log.dropped,
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes)
            .map_err(|e| StreamError::Trap(wasmtime::Error::new(e)))
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(
            self.append(buf)
                .map(|()| buf.len())
                .map_err(|e| io::Error::other(e.to_string())),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_past_capacity_and_counts_the_rest() {
        let log = LogPipe::new(10, false, None);
        log.append(b"hello ").unwrap();
        log.append(b"world, again").unwrap();
        let c = log.contents();
        assert_eq!(c.bytes, b"hello worl");
        assert_eq!(c.dropped, 8);
    }

    #[test]
    fn kill_on_overflow_reports_the_limit() {
        let log = LogPipe::new(4, true, None);
        assert!(log.append(b"1234").is_ok());
        let err = log.append(b"5").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the job wrote more than 4 bytes to its log"
        );
    }
}
