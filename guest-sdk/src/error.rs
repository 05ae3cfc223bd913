use std::fmt;

use crate::bindings::suanli::gpu::compute::{self, ErrorKind};

/// An error from the host's GPU service, or one the job raises itself.
#[derive(Clone, Debug)]
pub struct Error {
    kind: Option<ErrorKind>,
    message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the job's own (bad input, ...).
    pub fn msg(message: impl fmt::Display) -> Error {
        Error {
            kind: None,
            message: message.to_string(),
        }
    }

    /// What the host reported, or `None` for the job's own errors.
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<compute::GpuError> for Error {
    fn from(e: compute::GpuError) -> Error {
        Error {
            kind: Some(e.kind),
            message: e.message,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
