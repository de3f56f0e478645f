//! A client-side rate limit for Kubernetes API calls (`--kube-qps`, `--kube-burst`): a token
//! bucket in front of kube-rs's HTTP stack, shared by every request of the process.
//!
//! A watch costs one token when it starts; its stream is not limited.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tower::{Layer, Service};

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

/// The layer: wraps the client's HTTP service.
#[derive(Clone)]
pub struct RateLimitLayer(Arc<Bucket>);

impl RateLimitLayer {
    /// `qps` requests per second on average, bursts of `burst`.
    pub fn new(qps: f64, burst: u32) -> Self {
        RateLimitLayer(Bucket::new(qps, burst))
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            bucket: self.0.clone(),
            waiting: None,
            permitted: false,
        }
    }
}

/// The rate-limited service: not ready until it holds a token, so callers (kube-rs buffers its
/// service) wait in `poll_ready` and each `call` spends the token.
pub struct RateLimited<S> {
    inner: S,
    bucket: Arc<Bucket>,
    waiting: Option<BoxFuture<'static, ()>>,
    permitted: bool,
}

impl<S, R> Service<R> for RateLimited<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.permitted {
            let bucket = self.bucket.clone();
            let waiting = self
                .waiting
                .get_or_insert_with(|| Box::pin(async move { bucket.acquire().await }));
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
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let service =
            tower::service_fn(|n: u32| async move { Ok::<_, std::convert::Infallible>(n * 2) });
        let mut limited = RateLimitLayer::new(2.0, 1).layer(service);
        let start = Instant::now();
        for n in 1..=3 {
            let ready = tower::ServiceExt::ready(&mut limited).await.unwrap();
            assert_eq!(ready.call(n).await.unwrap(), n * 2);
        }
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }
}
