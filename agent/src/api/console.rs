//! The web console at `/` (and the API's readable page at `/api`): static assets compiled into the
//! binary, served with a Content-Security-Policy that allows nothing from outside the coordinator.
//! The page reads the same API as everyone else, with the token a person gives it once.

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use warp::{Filter, Reply};

const INDEX: &str = include_str!("console/index.html");
const API_PAGE: &str = include_str!("console/api.html");
const SCRIPT: &str = include_str!("console/console.js");
/// The decision view, shared with the reports ([`crate::decision_view`]).
pub const DECISIONS_SCRIPT: &str = include_str!("console/decisions.js");
const STYLE: &str = include_str!("console/console.css");
/// The decision view's style, shared with the reports.
pub const DECISIONS_STYLE: &str = include_str!("console/decisions.css");

/// Same-origin everything: no CDN, no inline script, no framing (clickjacking on Approve).
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(POLICY));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

/// `GET /`, `/api`, `/console.js`, `/decisions.js`, `/console.css`, `/decisions.css`.
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
{
    let index = warp::path::end().map(|| asset(INDEX, "text/html; charset=utf-8"));
    let api = warp::path!("api").map(|| asset(API_PAGE, "text/html; charset=utf-8"));
    let script = warp::path!("console.js").map(|| asset(SCRIPT, "text/javascript; charset=utf-8"));
    let decisions = warp::path!("decisions.js")
        .map(|| asset(DECISIONS_SCRIPT, "text/javascript; charset=utf-8"));
    let decisions_style =
        warp::path!("decisions.css").map(|| asset(DECISIONS_STYLE, "text/css; charset=utf-8"));
    let style = warp::path!("console.css").map(|| asset(STYLE, "text/css; charset=utf-8"));
    warp::get().and(
        index
            .or(api)
            .unify()
            .or(script)
            .unify()
            .or(decisions)
            .unify()
            .or(decisions_style)
            .unify()
            .or(style)
            .unify()
            .map(|r: warp::reply::Response| r.into_response()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_outside() {
        for asset in [
            INDEX,
            API_PAGE,
            SCRIPT,
            DECISIONS_SCRIPT,
            STYLE,
            DECISIONS_STYLE,
        ] {
            assert!(!asset.contains("http://") || asset.contains("http://www.w3.org/2000/svg"));
            assert!(!asset.contains("https://"), "an external URL in an asset");
        }
        assert!(
            !INDEX.contains("<script>"),
            "no inline script (the CSP forbids it)"
        );
    }
}
