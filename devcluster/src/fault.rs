//! The fault switch: for a while, every request is answered `429 Too Many Requests` (with
//! `Retry-After`) or `503 Service Unavailable` instead of being served, as an overloaded or
//! restarting kube-apiserver answers. Tests and `kuvert dev` users turn it on to see how a
//! client behaves: through [`crate::DevClusterHandle::set_fault`], or over HTTP with
//! `POST /devcluster/fault?status=429&seconds=30&retryAfter=5` (`seconds=0` turns it off).
//! Requests under `/devcluster/` are never faulted, so the switch can always be turned off.
//! Watches already open go on; new ones are refused like any request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::ApiError;

/// What the API server answers while a fault is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After` (whole seconds), as API Priority and Fairness
    /// answers.
    TooManyRequests {
        /// The `Retry-After` seconds.
        retry_after: u64,
    },
    /// `503 Service Unavailable`, as an API server starting or losing etcd answers.
    Unavailable,
}

impl Fault {
    fn error(self) -> ApiError {
        match self {
            Fault::TooManyRequests { retry_after } => {
                let mut err = ApiError::new(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.",
                );
                err.details = Some(json!({ "retryAfterSeconds": retry_after }));
                err
            }
            Fault::Unavailable => ApiError::new(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        }
    }
}

/// The switch and how many requests it answered.
#[derive(Default)]
pub(crate) struct FaultSwitch {
    on: Mutex<Option<(Fault, Instant)>>,
    answered: AtomicU64,
}

impl FaultSwitch {
    /// Turns `fault` on for `duration` (`None` or a zero duration: off).
    pub fn set(&self, fault: Option<Fault>, duration: Duration) {
        *self.on.lock().expect("fault") = fault
            .filter(|_| !duration.is_zero())
            .map(|f| (f, Instant::now() + duration));
    }

    /// The error to answer `path` with now, if a fault is on (and counts it).
    pub fn answer(&self, path: &str) -> Option<ApiError> {
        if path.starts_with("/devcluster/") {
            return None;
        }
        let mut on = self.on.lock().expect("fault");
        match *on {
            Some((fault, until)) if Instant::now() < until => {
                self.answered.fetch_add(1, Ordering::Relaxed);
                Some(fault.error())
            }
            Some(_) => {
                *on = None;
                None
            }
            None => None,
        }
    }

    /// Requests answered with a fault so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

/// Parses the switch's query (`status`, `seconds`, `retryAfter`): the fault and how long.
pub(crate) fn parse(
    query: &HashMap<String, String>,
) -> Result<(Option<Fault>, Duration), ApiError> {
    let number = |name: &str, default: u64| -> Result<u64, ApiError> {
        query.get(name).map_or(Ok(default), |v| {
            v.parse()
                .map_err(|_| ApiError::bad_request(format!("{name}={v:?} is not a whole number")))
        })
    };
    let seconds = number("seconds", 0)?;
    let fault = match number("status", 429)? {
        429 => Fault::TooManyRequests {
            retry_after: number("retryAfter", 1)?,
        },
        503 => Fault::Unavailable,
        other => {
            return Err(ApiError::bad_request(format!(
                "status={other} is not a fault this switch answers (429 or 503)"
            )));
        }
    };
    Ok((Some(fault), Duration::from_secs(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_switch_answers_every_request_but_its_own_until_it_ends() {
        let switch = FaultSwitch::default();
        assert!(switch.answer("/api/v1/secrets").is_none());
        switch.set(
            Some(Fault::TooManyRequests { retry_after: 3 }),
            Duration::from_secs(60),
        );
        let err = switch.answer("/api/v1/namespaces/default/secrets").unwrap();
        assert_eq!(err.code, 429);
        assert_eq!(err.details.unwrap()["retryAfterSeconds"], 3);
        assert!(
            switch.answer("/devcluster/fault").is_none(),
            "the switch stays reachable"
        );
        switch.set(Some(Fault::Unavailable), Duration::from_secs(60));
        assert_eq!(switch.answer("/apis").unwrap().code, 503);
        switch.set(None, Duration::ZERO);
        assert!(switch.answer("/apis").is_none());
        assert_eq!(switch.answered(), 2);
    }

    #[test]
    fn the_query_names_the_status_the_time_and_the_retry_after() {
        assert_eq!(
            parse(&query(&[
                ("status", "429"),
                ("seconds", "30"),
                ("retryAfter", "5")
            ]))
            .unwrap(),
            (
                Some(Fault::TooManyRequests { retry_after: 5 }),
                Duration::from_secs(30)
            )
        );
        assert_eq!(
            parse(&query(&[("status", "503"), ("seconds", "10")])).unwrap(),
            (Some(Fault::Unavailable), Duration::from_secs(10))
        );
        assert_eq!(
            parse(&query(&[])).unwrap().1,
            Duration::ZERO,
            "no seconds: off"
        );
        assert_eq!(
            parse(&query(&[("status", "500")])).unwrap_err().message,
            "status=500 is not a fault this switch answers (429 or 503)"
        );
        assert_eq!(
            parse(&query(&[("seconds", "soon")])).unwrap_err().message,
            "seconds=\"soon\" is not a whole number"
        );
    }
}
