use suanli_proto::{CodecError, ErrorCode, Role};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("connection: {0}")]
    Connection(quinn::ConnectionError),
    /// The coordinator is shutting down: a restart, usually. Worth
    /// reconnecting after a short pause. `cut: false`: it refused the
    /// request or the connection (`ErrorCode::ShuttingDown`, or a closed
    /// connection at the handshake), so nothing was carried out. `cut:
    /// true`: it closed the connection ([`CLOSE_SHUTDOWN`](crate::CLOSE_SHUTDOWN))
    /// while a request was in flight, which may or may not have been carried
    /// out (its answer may be what was lost): look before repeating it.
    #[error("{}", shutdown_text(*cut))]
    ShuttingDown { cut: bool },
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("write: {0}")]
    Write(quinn::WriteError),
    #[error("read: {0}")]
    Read(String),
    #[error("stream closed")]
    ClosedStream,
    #[error("{0}")]
    Codec(#[from] CodecError),
    #[error("the coordinator refused the connection: {0}")]
    Refused(String),
    /// The token is valid but has another role: `actual`. Requests every
    /// role may make can be retried by connecting as that role.
    #[error("the coordinator refused the connection: {reason}")]
    WrongRole { actual: Role, reason: String },
    #[error("{message}")]
    Remote { code: ErrorCode, message: String },
    #[error("unexpected answer from the peer: {0}")]
    Unexpected(String),
    #[error("blob does not match its hash {0}")]
    HashMismatch(String),
    #[error("blob of {size} bytes exceeds the limit of {limit} bytes")]
    BlobTooLarge { size: u64, limit: u64 },
    #[error("tls: {0}")]
    Tls(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

/// Whether the coordinator closed the connection because it is shutting
/// down: then every error that connection causes says so.
pub(crate) fn is_shutdown(e: &quinn::ConnectionError) -> bool {
    matches!(
        e,
        quinn::ConnectionError::ApplicationClosed(close)
            if close.error_code == quinn::VarInt::from_u32(crate::CLOSE_SHUTDOWN)
    )
}

fn shutdown_text(cut: bool) -> &'static str {
    if cut {
        "the coordinator shut down while this request was in flight; it may or may not have \
         been carried out: check (e.g. `suanli jobs`) before repeating it"
    } else {
        "the coordinator is shutting down; retry shortly"
    }
}

impl From<quinn::ConnectionError> for NetError {
    fn from(e: quinn::ConnectionError) -> NetError {
        if is_shutdown(&e) {
            return NetError::ShuttingDown { cut: true };
        }
        NetError::Connection(e)
    }
}

impl From<quinn::WriteError> for NetError {
    fn from(e: quinn::WriteError) -> NetError {
        match e {
            quinn::WriteError::ConnectionLost(c) if is_shutdown(&c) => {
                NetError::ShuttingDown { cut: true }
            }
            e => NetError::Write(e),
        }
    }
}

impl From<quinn::ReadExactError> for NetError {
    fn from(e: quinn::ReadExactError) -> NetError {
        match e {
            quinn::ReadExactError::ReadError(e) => e.into(),
            e => NetError::Read(e.to_string()),
        }
    }
}

impl From<quinn::ReadError> for NetError {
    fn from(e: quinn::ReadError) -> NetError {
        match e {
            quinn::ReadError::ConnectionLost(c) if is_shutdown(&c) => {
                NetError::ShuttingDown { cut: true }
            }
            e => NetError::Read(e.to_string()),
        }
    }
}

impl From<quinn::ClosedStream> for NetError {
    fn from(_: quinn::ClosedStream) -> NetError {
        NetError::ClosedStream
    }
}

impl NetError {
    /// Whether the connection (not the request) failed: worth reconnecting.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            NetError::Connection(_)
                | NetError::ShuttingDown { .. }
                | NetError::Connect(_)
                | NetError::Write(_)
                | NetError::Read(_)
                | NetError::ClosedStream
                | NetError::Io(_)
                | NetError::Timeout(_)
        )
    }
}
