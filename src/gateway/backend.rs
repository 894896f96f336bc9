//! The gateway's side of the store: one worker's [`Client`] connection, dialled lazily and
//! again after a failure, and how the store's errors become HTTP statuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::http::Response;
use super::metrics::Metrics;
use crate::client::{Client, Error, ErrorCode};

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One worker's connection to the store, dialled lazily and again after a failure (with
/// exponential backoff, so a store that is down costs one connect attempt per backoff period,
/// not one per request).
pub struct Store {
    addr: String,
    timeout: Duration,
    client: Option<Client>,
    retry_at: Instant,
    backoff: Duration,
    metrics: Arc<Metrics>,
}

impl Store {
    pub fn new(addr: String, timeout: Duration, metrics: Arc<Metrics>) -> Store {
        Store {
            addr,
            timeout,
            client: None,
            retry_at: Instant::now(),
            backoff: FIRST_BACKOFF,
            metrics,
        }
    }

    /// Dials now (at start, so the first request does not pay for it); failure is not fatal.
    pub fn warm_up(&mut self) {
        let _ = self.client();
    }

    fn client(&mut self) -> Result<&mut Client, Response> {
        let connected = self.client.as_ref().is_some_and(Client::is_connected);
        if !connected {
            let now = Instant::now();
            if now < self.retry_at {
                return Err(unavailable(
                    &self.addr,
                    "recently unreachable; retrying soon",
                ));
            }
            let result = match self.client.as_mut() {
                Some(client) => client.reconnect(),
                None => Client::connect(self.addr.as_str(), self.timeout).map(|client| {
                    self.client = Some(client);
                }),
            };
            match result {
                Ok(()) => {
                    self.backoff = FIRST_BACKOFF;
                    self.metrics
                        .store_connects
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(error) => {
                    self.retry_at = now + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    self.count_error();
                    return Err(unavailable(&self.addr, error));
                }
            }
        }
        // Connected or just dialled: the client exists.
        self.client
            .as_mut()
            .ok_or_else(|| unavailable(&self.addr, "no connection"))
    }

    fn count_error(&self) {
        self.metrics
            .store_errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Runs `op` on the connection. With `retry`, an operation that failed because the
    /// connection was stale (the store restarted since the last request) is tried once more on
    /// a fresh connection; only idempotent operations pass `retry`.
    pub(super) fn run<T>(
        &mut self,
        retry: bool,
        mut op: impl FnMut(&mut Client) -> Result<T, Error>,
    ) -> Result<T, Response> {
        let first = op(self.client()?);
        match first {
            Ok(value) => Ok(value),
            Err(error) if retry && matches!(error, Error::Disconnected | Error::Io(_)) => {
                self.retry_at = Instant::now();
                let second = op(self.client()?);
                second.map_err(|error| self.store_error(error))
            }
            Err(error) => Err(self.store_error(error)),
        }
    }

    fn store_error(&self, error: Error) -> Response {
        if error.code().is_none() {
            self.count_error();
        }
        error_response(&error)
    }
}

fn unavailable(addr: &str, reason: impl std::fmt::Display) -> Response {
    Response::error(
        503,
        "store_unavailable",
        format!("the store at {addr} is unreachable: {reason}"),
    )
    .header("Retry-After", "1")
}

/// The HTTP status and code for a store error.
pub(super) fn error_status(error: &Error) -> (u16, &'static str) {
    match error.code() {
        Some(ErrorCode::TooLarge) => (413, "too_large"),
        Some(ErrorCode::InvalidArgument | ErrorCode::NotInteger | ErrorCode::Overflow) => {
            (400, "invalid_argument")
        }
        Some(ErrorCode::Busy | ErrorCode::ShuttingDown) => (503, "store_busy"),
        Some(_) => (502, "store_error"),
        None => (502, "store_error"),
    }
}

fn error_response(error: &Error) -> Response {
    let (status, code) = error_status(error);
    let response = Response::error(status, code, format!("store: {error}"));
    if status == 503 {
        response.header("Retry-After", "1")
    } else {
        response
    }
}
