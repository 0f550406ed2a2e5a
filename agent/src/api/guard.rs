//! Who may use the API, and how often: per-client rate limits that apply **before** the token is
//! checked (so guessing tokens is as slow as any other abuse), and the bearer-token check itself.
//! See docs/architecture.md, "API".

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// A token bucket: `burst` requests, refilled at `per_second`.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    at: Instant,
}

impl Bucket {
    pub(crate) fn new(burst: f64, per_second: f64) -> Self {
        Self {
            tokens: burst,
            burst,
            per_second,
            at: Instant::now(),
        }
    }

    /// Takes `cost` tokens if there are that many.
    pub(crate) fn take(&mut self, cost: f64) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.per_second)
            .min(self.burst);
        self.at = now;
        if self.tokens >= cost {
            self.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Full again: a client whose bucket is full costs nothing to forget.
    fn is_full(&self) -> bool {
        self.tokens + self.at.elapsed().as_secs_f64() * self.per_second >= self.burst
    }
}

/// What a request does, which sets its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Listings, the portfolio, the assistants, metrics, opening the stream.
    Read,
    /// Approve or reject.
    Write,
}

/// Each client's bucket, per access: (burst, refill per second).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// (burst, refill per second) for [`Access::Read`] requests.
    pub read: (f64, f64),
    /// (burst, refill per second) for [`Access::Write`] requests.
    pub write: (f64, f64),
}

impl Default for Rates {
    /// Reads: bursts of 120, 40 a second; writes: bursts of 20, 5 a second.
    fn default() -> Self {
        Self {
            read: (120.0, 40.0),
            write: (20.0, 5.0),
        }
    }
}

impl Rates {
    fn of(&self, access: Access) -> (f64, f64) {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
        }
    }
}

/// A failed token check costs this many requests' worth, so token guessing stops sooner.
pub const FAILED_AUTH_COST: f64 = 5.0;

/// Clients tracked at once; past this, clients with full buckets are forgotten, then the oldest.
const MAX_CLIENTS: usize = 10_000;

/// One bucket per (client address, access).
#[derive(Debug, Default)]
pub struct ClientLimits {
    /// The rates new buckets start with; changing them leaves existing buckets as they are.
    pub rates: Rates,
    buckets: HashMap<(IpAddr, Access), Bucket>,
}

impl ClientLimits {
    /// Charges `client` `cost` requests of `access`; false when it is over its rate.
    pub fn take(&mut self, client: IpAddr, access: Access, cost: f64) -> bool {
        if self.buckets.len() >= MAX_CLIENTS && !self.buckets.contains_key(&(client, access)) {
            self.forget_idle();
        }
        let (burst, per_second) = self.rates.of(access);
        self.buckets
            .entry((client, access))
            .or_insert_with(|| Bucket::new(burst, per_second))
            .take(cost)
    }

    fn forget_idle(&mut self) {
        self.buckets.retain(|_, b| !b.is_full());
        if self.buckets.len() >= MAX_CLIENTS {
            if let Some(oldest) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| *k)
            {
                self.buckets.remove(&oldest);
            }
        }
    }
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a token check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No token was presented (401).
    Missing,
    /// A token was presented and it is not the one (403); also every token when none is set.
    Wrong,
}

/// Checks a presented token against the configured one; without a configured token nothing passes.
pub fn check_token(expected: Option<&str>, presented: Option<&str>) -> Result<(), Denied> {
    let presented = presented.ok_or(Denied::Missing)?;
    match expected {
        Some(t) if constant_time_eq(t.as_bytes(), presented.as_bytes()) => Ok(()),
        _ => Err(Denied::Wrong),
    }
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The header that carries the token where `Authorization` cannot: the Kubernetes API server's
/// service proxy (which `kubectl ia-agents` goes through) consumes `Authorization` itself.
pub const TOKEN_HEADER: &str = "x-ia-agents-token";

/// The request's credentials as an `Authorization` value: the header itself, else the token of
/// [`TOKEN_HEADER`] as `Bearer <token>`.
pub fn authorization(
) -> impl warp::Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    use warp::Filter;
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>(TOKEN_HEADER))
        .map(|authorization: Option<String>, token: Option<String>| {
            authorization.or_else(|| token.map(|t| format!("Bearer {}", t.trim())))
        })
        .or(warp::any().map(|| None))
        .unify()
}

/// The WebSocket subprotocol a browser offers next to its token (browsers cannot set headers on a
/// WebSocket): `new WebSocket(url, ["ia-agents.bearer", token])`.
pub const WS_BEARER_PROTOCOL: &str = "ia-agents.bearer";

/// The token offered in `Sec-WebSocket-Protocol: ia-agents.bearer, <token>`.
pub fn subprotocol_token(header: Option<&str>) -> Option<&str> {
    let mut offered = header?.split(',').map(str::trim);
    offered.find(|p| *p == WS_BEARER_PROTOCOL)?;
    header?
        .split(',')
        .map(str::trim)
        .find(|p| *p != WS_BEARER_PROTOCOL && !p.is_empty())
}

/// Whether a browser's `Origin` may open the stream: no Origin (not a browser), the API's own
/// origin (`Host`), or one of `allowed` (exact `scheme://host[:port]`).
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    if allowed.iter().any(|a| a == origin) {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_in_constant_time_and_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert_eq!(check_token(Some("t"), Some("t")), Ok(()));
        assert_eq!(check_token(Some("t"), None), Err(Denied::Missing));
        assert_eq!(check_token(Some("t"), Some("u")), Err(Denied::Wrong));
        assert_eq!(
            check_token(None, Some("t")),
            Err(Denied::Wrong),
            "no token set: nobody"
        );
    }

    #[test]
    fn the_bucket_refuses_bursts() {
        let mut b = Bucket::new(2.0, 0.0);
        assert!(b.take(1.0) && b.take(1.0));
        assert!(!b.take(1.0));
    }

    #[test]
    fn clients_are_limited_one_by_one_and_failures_cost_more() {
        let mut limits = ClientLimits::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let granted = (0..100)
            .filter(|_| limits.take(a, Access::Write, FAILED_AUTH_COST))
            .count();
        assert!(granted <= 5, "{granted} failed attempts passed");
        assert!(
            limits.take(b, Access::Write, 1.0),
            "another client is not held up"
        );
        assert!(
            limits.take(a, Access::Read, 1.0),
            "reads have a bucket of their own"
        );
    }

    #[test]
    fn browsers_offer_the_token_as_a_subprotocol() {
        assert_eq!(
            subprotocol_token(Some("ia-agents.bearer, abc123")),
            Some("abc123")
        );
        assert_eq!(subprotocol_token(Some("abc123")), None);
        assert_eq!(subprotocol_token(None), None);
    }

    #[test]
    fn only_the_api_s_own_or_listed_origins_open_the_stream() {
        let listed = vec!["https://console.example".to_string()];
        assert!(origin_allowed(None, Some("x:8080"), &[]));
        assert!(origin_allowed(Some("http://x:8080"), Some("x:8080"), &[]));
        assert!(origin_allowed(
            Some("https://console.example"),
            Some("x:8080"),
            &listed
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            Some("x:8080"),
            &listed
        ));
        assert!(!origin_allowed(Some("null"), Some("x:8080"), &listed));
    }
}
