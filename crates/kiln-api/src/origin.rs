//! Telling a browser's cross-site request from the node's own pages and from non-browser
//! clients. Browsers mark cross-site requests with `Sec-Fetch-Site`, or failing that with
//! an `Origin` that is not this server's; a request with neither header does not come from
//! a page a third party could make a browser load, and passes. The web UI's forms and the
//! whole API (`/api/...`, which changes the node) are guarded this way, so a page served by
//! the gateway, or any web site, cannot make a visitor's browser pin, add or collect.

use axum::http::{HeaderMap, header};

/// `Ok` when the request may act on this node; else why not.
pub(crate) fn check(h: &HeaderMap) -> Result<(), String> {
    if let Some(site) = h.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            other => Err(format!(
                "the browser says it comes from a {} page",
                String::from_utf8_lossy(other)
            )),
        };
    }
    let Some(origin) = h.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("");
    let host = h
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if same_authority(origin, host) {
        Ok(())
    } else {
        Err(format!("Origin {origin:?} is not this server"))
    }
}

/// Refuse cross-site requests to `/api/` with 403 and a Kubo-style error.
pub(crate) async fn guard_api(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    if (path.starts_with("/api/") || path.starts_with("/psa/"))
        && let Err(why) = check(req.headers())
    {
        return crate::ApiError::forbidden(format!(
            "403 - Forbidden: cross-site request refused: {why}"
        ))
        .into_response();
    }
    next.run(req).await
}

/// Does `origin` (`scheme://host[:port]`) name the same host and port as the `Host` header?
pub(crate) fn same_authority(origin: &str, host: &str) -> bool {
    let (default_port, rest) = if let Some(r) = origin.strip_prefix("http://") {
        ("80", r)
    } else if let Some(r) = origin.strip_prefix("https://") {
        ("443", r)
    } else {
        return false;
    };
    let with_port = |a: &str| {
        // `[v6]:port`, `[v6]`, `name:port`, `name`
        let has_port = match a.rfind(']') {
            Some(i) => a[i..].contains(':'),
            None => a.contains(':'),
        };
        if has_port {
            a.to_ascii_lowercase()
        } else {
            format!("{}:{default_port}", a.to_ascii_lowercase())
        }
    };
    !rest.is_empty() && !host.is_empty() && with_port(rest) == with_port(host)
}
