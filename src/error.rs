//! The library's one error type.

use thiserror::Error;

/// Every fallible operation in natgrad returns this error.
///
/// Variants name *what* went wrong and *where* (iteration, block, field), so
/// that a command-line user sees a one-line diagnosis instead of a backtrace.
#[derive(Debug, Error)]
pub enum Error {
    /// A configuration value is out of its allowed range or inconsistent.
    #[error("invalid value for `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `model.widths`.
        field: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },
    /// A name (problem, optimiser, activation, …) that is not known.
    #[error("unknown {kind} `{name}`; known: {known}")]
    UnknownName {
        /// What kind of name it is ("problem", "optimizer", …).
        kind: &'static str,
        /// The name given.
        name: String,
        /// Comma-separated list of the accepted names.
        known: String,
    },
    /// Array dimensions that do not fit together.
    #[error("dimension mismatch in {context}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Where the mismatch was found.
        context: String,
        /// The expected size.
        expected: usize,
        /// The size found.
        got: usize,
    },
    /// A NaN or infinity appeared in a computed quantity.
    #[error("non-finite {quantity} in block `{block}`{}", iteration.map(|i| format!(" at iteration {i}")).unwrap_or_default())]
    NonFinite {
        /// The quantity (residual, Jacobian, loss, …).
        quantity: &'static str,
        /// The residual block where it appeared (or `-` when not block-specific).
        block: String,
        /// The training iteration, when known.
        iteration: Option<usize>,
    },
    /// A dense factorisation did not converge.
    #[error("linear algebra failure: {0}")]
    LinearAlgebra(String),
    /// The CUDA device asked for cannot be used (not built in, no driver or
    /// library, no device), or one of its calls failed.
    #[error("CUDA device: {0}")]
    Device(String),
    /// Reading or writing a file failed.
    #[error("I/O error on `{path}`: {cause}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error (in the message, not repeated as a source:
        /// error chains print it once).
        cause: std::io::Error,
    },
    /// A run would not fit in the machine's memory.
    #[error(
        "the run needs about {needed_mib} MiB ({what}), but only {available_mib} MiB are available"
    )]
    Memory {
        /// Estimated peak, MiB.
        needed_mib: u64,
        /// Available memory, MiB.
        available_mib: u64,
        /// What dominates the estimate.
        what: String,
    },
    /// Drawing a figure failed.
    #[error("cannot draw `{path}`: {reason}")]
    Plot {
        /// The figure file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// A JSON document could not be parsed or does not describe a valid object.
    #[error("cannot parse `{path}`: {reason}")]
    Parse {
        /// The file (or `<string>`).
        path: String,
        /// The parser's message.
        reason: String,
    },
}

/// Shorthand for `Result<T, natgrad::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Build an [`Error::InvalidConfig`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidConfig {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Build an [`Error::Io`] for `path`.
    pub fn io(path: impl AsRef<std::path::Path>, cause: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            cause,
        }
    }

    /// Attach an iteration number to a [`Error::NonFinite`] error; other variants are returned unchanged.
    pub fn at_iteration(self, iter: usize) -> Self {
        match self {
            Error::NonFinite {
                quantity, block, ..
            } => Error::NonFinite {
                quantity,
                block,
                iteration: Some(iter),
            },
            other => other,
        }
    }
}
