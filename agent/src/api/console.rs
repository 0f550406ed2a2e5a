//! The web console at `/` (and the API's readable page at `/api`): static assets compiled into the
//! binary, served with a Content-Security-Policy that allows nothing from outside the coordinator.
//! The page reads the same API as everyone else, with the token a person gives it once.

use warp::http::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use warp::{Filter, Reply};

const INDEX: &str = include_str!("console/index.html");
const API_PAGE: &str = include_str!("console/api.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

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

/// `GET /`, `/api`, `/console.js`, `/console.css`.
pub fn routes() -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone
{
    let index = warp::path::end().map(|| asset(INDEX, "text/html; charset=utf-8"));
    let api = warp::path!("api").map(|| asset(API_PAGE, "text/html; charset=utf-8"));
    let script = warp::path!("console.js").map(|| asset(SCRIPT, "text/javascript; charset=utf-8"));
    let style = warp::path!("console.css").map(|| asset(STYLE, "text/css; charset=utf-8"));
    warp::get().and(
        index
            .or(api)
            .unify()
            .or(script)
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
        for asset in [INDEX, API_PAGE, SCRIPT, STYLE] {
            assert!(!asset.contains("http://") || asset.contains("http://www.w3.org/2000/svg"));
            assert!(!asset.contains("https://"), "an external URL in an asset");
        }
        assert!(
            !INDEX.contains("<script>"),
            "no inline script (the CSP forbids it)"
        );
    }
}
