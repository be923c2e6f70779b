//! The layer's error: refused by the limiter, or failed in the inner service.

use std::fmt;

use crate::ledger::Refusal;

/// What a request through the layer can fail with.
#[derive(Debug)]
pub enum Error<E> {
    /// The limiter refused the request (it would wait too long, costs more than a
    /// window holds, a shared store refused it, ...). Nothing was sent. A
    /// request refused here was charged nothing; one a shared store refused
    /// gives back what this process held for it: at once, or, if requests
    /// were charged after it meanwhile, once they are given back too
    /// (otherwise it stays counted, the safe side).
    Limited(Refusal),
    /// The inner service failed. The request stays counted: it may have reached
    /// the server before failing, and counting it is the safe side.
    Service(E),
}

impl<E> Error<E> {
    /// The refusal, if the limiter refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Limited(r) => Some(r),
            Error::Service(_) => None,
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Limited(r) => write!(f, "not sent: {r}"),
            Error::Service(e) => write!(f, "{e}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Limited(r) => Some(r),
            Error::Service(e) => Some(e),
        }
    }
}
