//! Client-side limits for Kubernetes API calls, shared by every request of the process:
//!
//! - **The API server's own verdict.** An API server protecting itself (API Priority and
//!   Fairness, `--max-requests-inflight`) answers `429 Too Many Requests` with `Retry-After:
//!   <seconds>`. After any 429, every *new* request of the process waits until that instant has
//!   passed; requests already sent are neither held nor cancelled. So kuvert runs as fast as the
//!   server accepts and slows down only when the server says so.
//! - **Optionally a fixed token bucket** (`--kube-qps`, `--kube-burst`). A watch costs one token
//!   when it starts; its stream is not limited.
//!
//! The 429 itself is returned unchanged: retrying is up to whoever sits above this layer (kube's
//! retry policy in [`crate::run::client`], or a reconcile's back-off).

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{HeaderMap, StatusCode};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service};

/// How long a 429 without a usable `Retry-After` (absent, or an HTTP date) holds new requests.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The longest hold one 429 can impose, so that a misbehaving proxy cannot stall every
/// reconcile for hours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The layer for [`kube::client::ClientBuilder::with_layer`]: honours every 429's `Retry-After`
/// and, if `qps > 0`, also limits requests to `qps` per second on average with bursts of
/// `burst`. `qps <= 0` means no fixed rate: only the server's `Retry-After` slows requests down.
pub fn layer(qps: f64, burst: u32) -> KubeLimitLayer {
    KubeLimitLayer(Arc::new(Limits {
        bucket: (qps > 0.0).then(|| Bucket::new(qps, burst)),
        held_until: std::sync::Mutex::new(None),
    }))
}

/// Tokens refilled at `qps` per second, at most `burst` saved up.
pub struct Bucket {
    qps: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(qps: f64, burst: u32) -> Arc<Self> {
        let burst = f64::from(burst.max(1));
        Arc::new(Bucket {
            qps,
            burst,
            state: Mutex::new((burst, Instant::now())),
        })
    }

    /// Waits for a token.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().await;
                let now = Instant::now();
                let refill = now.duration_since(state.1).as_secs_f64() * self.qps;
                state.0 = (state.0 + refill).min(self.burst);
                state.1 = now;
                if state.0 >= 1.0 {
                    state.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - state.0) / self.qps)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// What every service made by one [`KubeLimitLayer`] shares.
struct Limits {
    bucket: Option<Arc<Bucket>>,
    /// Until when the API server asked not to be sent new requests.
    held_until: std::sync::Mutex<Option<Instant>>,
}

impl Limits {
    /// Waits until a new request may be sent: a token first, then the end of any hold (a hold
    /// that began while waiting for the token still applies).
    async fn admit(&self) {
        if let Some(bucket) = &self.bucket {
            bucket.acquire().await;
        }
        while let Some(until) = self.hold() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// The end of the current hold, if one is in force.
    fn hold(&self) -> Option<Instant> {
        let held_until = *self.held_until.lock().expect("hold");
        held_until.filter(|until| *until > Instant::now())
    }

    /// Holds new requests for `retry_after` from now; never shortens a longer hold.
    fn back_off(&self, retry_after: Duration) {
        let until = Instant::now() + retry_after;
        let mut held_until = self.held_until.lock().expect("hold");
        let previous = *held_until;
        if previous.is_none_or(|previous| previous < until) {
            *held_until = Some(until);
        }
        drop(held_until);
        // Once per hold, not once per 429: a busy server answers many requests at once.
        if previous.is_none_or(|previous| previous <= Instant::now()) {
            tracing::warn!(
                retry_after_seconds = retry_after.as_secs(),
                "the kubernetes api server is overloaded (429): holding new requests"
            );
        }
    }
}

/// The `Retry-After` of a 429 in whole seconds, capped at [`MAX_RETRY_AFTER`];
/// [`DEFAULT_RETRY_AFTER`] when absent or not a number (kube-apiserver only sends seconds).
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(http::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, |seconds| {
            Duration::from_secs(seconds).min(MAX_RETRY_AFTER)
        })
}

/// The layer made by [`layer`]; every service it wraps shares one token bucket and one hold.
#[derive(Clone)]
pub struct KubeLimitLayer(Arc<Limits>);

impl<S> Layer<S> for KubeLimitLayer {
    type Service = KubeLimited<S>;
    fn layer(&self, inner: S) -> Self::Service {
        KubeLimited {
            inner,
            limits: self.0.clone(),
            waiting: None,
            permitted: false,
        }
    }
}

/// The limited service: not ready until a request may be sent, so callers (kube-rs buffers its
/// service) wait in `poll_ready`, and each `call` spends the permission.
pub struct KubeLimited<S> {
    inner: S,
    limits: Arc<Limits>,
    waiting: Option<BoxFuture<'static, ()>>,
    permitted: bool,
}

impl<S, R, B> Service<R> for KubeLimited<S>
where
    S: Service<R, Response = http::Response<B>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.permitted {
            let limits = self.limits.clone();
            let waiting = self
                .waiting
                .get_or_insert_with(|| Box::pin(async move { limits.admit().await }));
            if waiting.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.waiting = None;
            self.permitted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.permitted = false;
        let limits = self.limits.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                limits.back_off(retry_after(response.headers()));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;

    /// A request to [`echo`]: how long the "server" takes, and what it answers.
    type Canned = (Duration, http::Response<()>);

    /// A stand-in API server that answers each request with the response it carries.
    fn echo() -> impl Service<
        Canned,
        Response = http::Response<()>,
        Error = Infallible,
        Future = impl Future<Output = Result<http::Response<()>, Infallible>> + Send + 'static,
    > + Clone {
        tower::service_fn(|(delay, response): Canned| async move {
            tokio::time::sleep(delay).await;
            Ok(response)
        })
    }

    fn ok() -> Canned {
        (Duration::ZERO, http::Response::new(()))
    }

    fn too_many_requests(retry_after: Option<&str>) -> Canned {
        let mut response = http::Response::builder().status(StatusCode::TOO_MANY_REQUESTS);
        if let Some(seconds) = retry_after {
            response = response.header(http::header::RETRY_AFTER, seconds);
        }
        (Duration::ZERO, response.body(()).unwrap())
    }

    /// Waits until `service` may send, sends, and returns the response's future.
    async fn send<S>(service: &mut KubeLimited<S>, request: Canned) -> http::Response<()>
    where
        S: Service<Canned, Response = http::Response<()>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        service.ready().await.unwrap().call(request).await.unwrap()
    }

    /// How long a new request of `service` waits before it may be sent.
    async fn hold_of<S>(service: &mut KubeLimited<S>) -> Duration
    where
        S: Service<Canned, Response = http::Response<()>, Error = Infallible>,
        S::Future: Send + 'static,
    {
        let start = Instant::now();
        service.ready().await.unwrap();
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_passes_at_once_then_requests_follow_the_rate() {
        let bucket = Bucket::new(10.0, 5);
        let start = Instant::now();
        for _ in 0..5 {
            bucket.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst is free");
        for _ in 0..10 {
            bucket.acquire().await;
        }
        let took = start.elapsed().as_secs_f64();
        assert!((0.99..1.01).contains(&took), "10 more at 10/s took {took}s");
    }

    #[tokio::test(start_paused = true)]
    async fn the_layer_delays_calls_of_the_wrapped_service() {
        let mut limited = layer(2.0, 1).layer(echo());
        let start = Instant::now();
        for _ in 1..=3 {
            assert_eq!(send(&mut limited, ok()).await.status(), StatusCode::OK);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_fixed_rate_requests_are_not_delayed() {
        let mut limited = layer(0.0, 1).layer(echo());
        let start = Instant::now();
        for _ in 0..1000 {
            send(&mut limited, ok()).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_with_retry_after_holds_every_new_request_until_then() {
        let limits = layer(0.0, 1);
        let mut one = limits.layer(echo());
        let mut other = limits.layer(echo());

        let response = send(&mut one, too_many_requests(Some("3"))).await;
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "returned unchanged"
        );
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "3");

        assert_eq!(hold_of(&mut other).await, Duration::from_secs(3));
        let after = send(&mut other, ok()).await;
        assert_eq!(after.status(), StatusCode::OK);
        assert_eq!(hold_of(&mut one).await, Duration::ZERO, "the hold is over");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_without_retry_after_holds_one_second() {
        let mut limited = layer(0.0, 1).layer(echo());
        send(&mut limited, too_many_requests(None)).await;
        assert_eq!(hold_of(&mut limited).await, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_that_is_not_seconds_holds_one_second() {
        let mut limited = layer(0.0, 1).layer(echo());
        let http_date = Some("Wed, 21 Oct 2015 07:28:00 GMT");
        send(&mut limited, too_many_requests(http_date)).await;
        assert_eq!(hold_of(&mut limited).await, Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_above_a_minute_holds_one_minute() {
        let mut limited = layer(0.0, 1).layer(echo());
        send(&mut limited, too_many_requests(Some("86400"))).await;
        assert_eq!(hold_of(&mut limited).await, Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_shorter_retry_after_does_not_shorten_a_longer_hold() {
        let mut limited = layer(0.0, 1).layer(echo());
        let slow = limited
            .ready()
            .await
            .unwrap()
            .call((Duration::from_secs(2), too_many_requests(Some("1")).1));
        let quick = limited
            .ready()
            .await
            .unwrap()
            .call(too_many_requests(Some("10")));
        quick.await.unwrap();
        slow.await.unwrap();
        assert_eq!(
            hold_of(&mut limited).await,
            Duration::from_secs(8),
            "the 10 s hold from t=0, not the 1 s one from t=2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn requests_in_flight_are_not_held() {
        let mut limited = layer(0.0, 1).layer(echo());
        let start = Instant::now();
        let in_flight = tokio::spawn(
            limited
                .ready()
                .await
                .unwrap()
                .call((Duration::from_secs(5), http::Response::new(()))),
        );
        send(&mut limited, too_many_requests(Some("30"))).await;

        let response = in_flight.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(5),
            "not held until 30 s"
        );
        assert_eq!(hold_of(&mut limited).await, Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_rate_and_a_hold_overlap_rather_than_add_up() {
        let mut limited = layer(1.0, 1).layer(echo());
        let start = Instant::now();
        send(&mut limited, too_many_requests(Some("5"))).await;
        limited.ready().await.unwrap();
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(5),
            "the token came at 1 s, inside the hold"
        );
    }
}
