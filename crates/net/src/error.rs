use suanli_proto::{CodecError, ErrorCode, Role};

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    #[error("write: {0}")]
    Write(#[from] quinn::WriteError),
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

impl From<quinn::ReadExactError> for NetError {
    fn from(e: quinn::ReadExactError) -> NetError {
        NetError::Read(e.to_string())
    }
}

impl From<quinn::ReadError> for NetError {
    fn from(e: quinn::ReadError) -> NetError {
        NetError::Read(e.to_string())
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
                | NetError::Connect(_)
                | NetError::Write(_)
                | NetError::Read(_)
                | NetError::ClosedStream
                | NetError::Io(_)
                | NetError::Timeout(_)
        )
    }
}
