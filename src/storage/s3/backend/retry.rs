//! Bounded retries with full-jitter exponential backoff, and the mapping of S3 SDK errors to
//! [`StorageError`].
//!
//! The SDK's own retries are disabled: every request goes through [`run`], which bounds each
//! attempt by a deadline and makes at most `max_retries` more attempts after the first.
//! Transient failures (timeouts, connection errors, 5xx, throttling, 409, `RequestTimeout`) are
//! retried and end as `Unavailable`; refusals (403, 400, other 4xx) end at once as `Refused`;
//! an absent object (`NoSuchKey`, or 404 on HEAD) is `NotFound`.

use std::error::Error;
use std::future::Future;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;

use super::Inner;
use crate::storage::StorageError;

/// First backoff step; step `n` waits a random time in `[0, min(CAP, BASE * 2^n)]`.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// Longest single backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(5);

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    pub max_retries: u32,
}

impl RetryPolicy {
    pub fn new(max_retries: u32) -> Self {
        RetryPolicy { max_retries }
    }

    /// The longest wait before retry number `retry` (0 for the first retry).
    fn backoff_ceiling(retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX);
        BACKOFF_BASE.saturating_mul(factor).min(BACKOFF_CAP)
    }

    /// A full-jitter wait before retry number `retry`.
    pub fn backoff(retry: u32) -> Duration {
        let ceiling = u64::try_from(Self::backoff_ceiling(retry).as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=ceiling))
    }

    /// The most time all backoff waits of one request can add up to.
    #[cfg(test)]
    fn max_total_backoff(&self) -> Duration {
        (0..self.max_retries).map(Self::backoff_ceiling).sum()
    }
}

/// The outcome of one failed attempt.
#[derive(Debug)]
pub(super) enum Failure {
    /// Worth another attempt; the text says what went wrong.
    Transient(String),
    /// The final answer.
    Fatal(StorageError),
}

/// Runs `attempt` until it succeeds, fails for good, or the retries are spent. Each attempt
/// is cut off after `deadline`. `op` and `key` name the request in the error.
pub(super) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    op: &'static str,
    key: &str,
    deadline: Duration,
    mut attempt: F,
) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let attempts = policy.max_retries.saturating_add(1);
    let mut last = String::new();
    for n in 0..attempts {
        if n > 0 {
            tokio::time::sleep(RetryPolicy::backoff(n - 1)).await;
        }
        last = match tokio::time::timeout(deadline, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(Failure::Fatal(err))) => return Err(err),
            Ok(Err(Failure::Transient(message))) => message,
            Err(_) => format!("no answer within {}", seconds(deadline)),
        };
        tracing::debug!(op, key, attempt = n + 1, of = attempts, error = %last, "s3 request failed");
    }
    Err(StorageError::Unavailable {
        op,
        key: key.to_string(),
        message: format!("{last} (gave up after {attempts} attempts)"),
    })
}

/// A duration as seconds, for messages.
pub(super) fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Error codes S3 uses for conditions that pass.
pub(super) fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "SlowDown"
            | "RequestTimeout"
            | "InternalError"
            | "ServiceUnavailable"
            | "Throttling"
            | "ThrottlingException"
            | "RequestThrottled"
            | "TooManyRequests"
            | "OperationAborted"
    )
}

/// Folds a (server-supplied) message onto one line.
pub(super) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error and its sources on one line, without repeating a source already included.
pub(super) fn chain_text(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = one_line(&e.to_string());
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

/// The first error of type `T` in the source chain of `err`.
fn find_in_chain<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

impl Inner {
    /// Maps one failed SDK request to a retry decision.
    pub(super) fn classify<E>(
        &self,
        op: &'static str,
        key: &str,
        err: &SdkError<E, HttpResponse>,
    ) -> Failure
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
    {
        if let Some(creds) = find_in_chain::<CredentialsError>(err) {
            return self.classify_credentials(op, key, creds);
        }
        let refused = |message: String| {
            Failure::Fatal(StorageError::Refused {
                op,
                key: key.to_string(),
                message,
            })
        };
        match err {
            SdkError::ConstructionFailure(_) => {
                refused(format!("could not build the request: {}", chain_text(err)))
            }
            SdkError::TimeoutError(_) => Failure::Transient("request timed out".into()),
            SdkError::DispatchFailure(dispatch) if dispatch.is_user() => {
                refused(format!("could not send the request: {}", chain_text(err)))
            }
            SdkError::DispatchFailure(_) => {
                Failure::Transient(format!("connection failed: {}", chain_text(err)))
            }
            SdkError::ResponseError(_) => {
                Failure::Transient(format!("bad response: {}", chain_text(err)))
            }
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = err.code().unwrap_or("");
                let detail = err.message().map(one_line).filter(|m| !m.is_empty());
                let message = match (code.is_empty(), detail) {
                    (true, _) => format!("s3 answered http {status}"),
                    (false, None) => format!("s3 error '{code}' (http {status})"),
                    (false, Some(detail)) => format!("s3 error '{code}' (http {status}): {detail}"),
                };
                let absent = code == "NoSuchKey"
                    || (status == 404 && (code.is_empty() || code == "NotFound"));
                if absent && (op == "get" || op == "head") {
                    match crate::storage::Key::new(key) {
                        Ok(key) => Failure::Fatal(StorageError::NotFound { key }),
                        Err(_) => refused(message),
                    }
                } else if status >= 500 || status == 429 || status == 409 || is_transient_code(code)
                {
                    Failure::Transient(message)
                } else {
                    refused(message)
                }
            }
            _ => Failure::Transient(chain_text(err)),
        }
    }

    fn classify_credentials(&self, op: &'static str, key: &str, err: &CredentialsError) -> Failure {
        let refused = |message: String| {
            Failure::Fatal(StorageError::Refused {
                op,
                key: key.to_string(),
                message,
            })
        };
        match err {
            CredentialsError::CredentialsNotLoaded(_) => refused(format!(
                "no s3 credentials found (looked in: {})",
                self.credential_sources
            )),
            CredentialsError::ProviderTimedOut(_) => {
                Failure::Transient("timed out loading s3 credentials".into())
            }
            CredentialsError::InvalidConfiguration(_) => refused(format!(
                "invalid s3 credentials configuration: {}",
                chain_text(err)
            )),
            CredentialsError::ProviderError(_) => refused(format!(
                "loading s3 credentials failed: {}",
                chain_text(err)
            )),
            _ => Failure::Transient(format!(
                "loading s3 credentials failed: {}",
                chain_text(err)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap() {
        assert_eq!(RetryPolicy::backoff_ceiling(0), Duration::from_millis(100));
        assert_eq!(RetryPolicy::backoff_ceiling(3), Duration::from_millis(800));
        assert_eq!(RetryPolicy::backoff_ceiling(40), BACKOFF_CAP);
        for n in 0..10 {
            assert!(RetryPolicy::backoff(n) <= RetryPolicy::backoff_ceiling(n));
        }
        assert_eq!(
            RetryPolicy::new(2).max_total_backoff(),
            Duration::from_millis(300)
        );
        assert_eq!(RetryPolicy::new(0).max_total_backoff(), Duration::ZERO);
    }

    #[tokio::test]
    async fn run_stops_after_the_retries() {
        let mut calls = 0;
        let result: Result<(), _> = run(
            &RetryPolicy::new(2),
            "get",
            "k",
            Duration::from_millis(50),
            || {
                calls += 1;
                async { Err(Failure::Transient("boom".into())) }
            },
        )
        .await;
        assert_eq!(calls, 3);
        let err = result.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("boom") && err.contains("3 attempts"), "{err}");
    }

    #[tokio::test]
    async fn run_cuts_a_silent_attempt_off() {
        let started = std::time::Instant::now();
        let result: Result<(), _> = run(
            &RetryPolicy::new(1),
            "put",
            "k",
            Duration::from_millis(50),
            std::future::pending::<Result<(), Failure>>,
        )
        .await;
        assert!(
            result.as_ref().is_err_and(StorageError::is_unavailable),
            "{result:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn run_does_not_retry_a_fatal_failure() {
        let mut calls = 0;
        let result: Result<(), _> = run(
            &RetryPolicy::new(5),
            "put",
            "k",
            Duration::from_secs(1),
            || {
                calls += 1;
                async {
                    Err(Failure::Fatal(StorageError::Refused {
                        op: "put",
                        key: "k".into(),
                        message: "no".into(),
                    }))
                }
            },
        )
        .await;
        assert_eq!(calls, 1);
        assert!(matches!(result, Err(StorageError::Refused { .. })));
    }

    #[test]
    fn messages_fold_onto_one_line() {
        assert_eq!(one_line(" a\n  b\tc "), "a b c");
        let err = std::io::Error::other("outer");
        assert_eq!(chain_text(&err), "outer");
    }
}
