//! A client-side request rate limit shared by every CloudWatch Logs request
//! of a run (FilterLogEvents is limited to 5 requests/s per account and
//! Region, shared with every other caller). Requests are spaced at least
//! `1 / rate` seconds apart (a token bucket holding one token): parallel
//! stream fetches queue on it instead of bursting into throttling.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces requests to at most `rate` per second.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimiter {
    /// `rate` requests per second; 0 or less means no limit.
    pub fn new(rate: f64) -> Self {
        let interval = if rate > 0.0 && rate.is_finite() {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        RateLimiter {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn acquire(&self) {
        if self.interval.is_zero() {
            return;
        }
        let slot = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let slot = next.map_or(now, |n| n.max(now));
            *next = Some(slot + self.interval);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let limiter = RateLimiter::new(20.0);
            let start = Instant::now();
            for _ in 0..5 {
                limiter.acquire().await;
            }
            // First at once, then 4 × 50 ms.
            let took = start.elapsed();
            assert!(took >= Duration::from_millis(195), "{took:?}");
            assert!(took < Duration::from_secs(2), "{took:?}");
        });
    }
}
