//! The errors of the HTTP doors, one type per error table: [`ApiError`] renders the node's
//! errors as the Kubo RPC does (kubo's table: 500 for what is not the client's fault),
//! [`KilnError`] as kiln's own API does (the HTTP status of each kind: 404 not found, 409
//! conflict). Both share one JSON shape; a handler's return type picks the table, so a `?`
//! cannot answer with the other protocol's status.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error as the Kubo RPC reports it: `{"Message", "Code", "Type": "error"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// Kubo's error code: 0 = normal, 1 = client (bad arguments).
    code: u8,
    /// kiln's stable reason code of a refusal (401, 403, 429), as `"Reason"` in the body.
    reason: Option<&'static str>,
    /// Seconds after which to try again (a 429), as `Retry-After`.
    retry_after: Option<u64>,
}

impl ApiError {
    /// A bad request (unknown or malformed arguments).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            code: 1,
            reason: None,
            retry_after: None,
        }
    }

    /// A failure of the operation itself.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            code: 0,
            reason: None,
            retry_after: None,
        }
    }

    /// A request the node refuses to act on (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            code: 1,
            reason: None,
            retry_after: None,
        }
    }

    /// Content that is not in the store (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            code: 0,
            reason: None,
            retry_after: None,
        }
    }

    /// A request body over the configured limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: message.into(),
            code: 1,
            reason: None,
            retry_after: None,
        }
    }

    /// A malformed multipart body, or one over the body limit.
    pub fn multipart(e: axum::extract::multipart::MultipartError) -> Self {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(format!("request body too large: {e}"))
        } else {
            ApiError::bad_request(format!("bad multipart body: {e}"))
        }
    }

    /// The node cannot take this on now (503): stopping, or too busy.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            code: 0,
            reason: None,
            retry_after: None,
        }
    }

    /// Wrong HTTP method: the RPC takes POST only.
    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "405 - Method Not Allowed: the RPC API takes POST".into(),
            code: 1,
            reason: None,
            retry_after: None,
        }
    }
}

impl ApiError {
    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("task failed: {e}"))
    }
}

/// The Kubo RPC's rendering of the node's errors: kubo answers 500 ("normal" errors, code 0)
/// for everything that is not the client's fault, 400 (code 1) for bad arguments.
impl From<kiln_node::Error> for ApiError {
    fn from(e: kiln_node::Error) -> Self {
        use kiln_node::ErrorKind as K;
        let message = e.message().to_string();
        let reason =
            matches!(e.kind(), K::Unauthenticated | K::Forbidden | K::Quota).then(|| e.reason());
        let err = match e.kind() {
            K::InvalidInput => ApiError::bad_request(message),
            K::Forbidden => ApiError::forbidden(message),
            K::Unauthenticated => ApiError {
                status: StatusCode::UNAUTHORIZED,
                ..ApiError::forbidden(message)
            },
            K::Quota => ApiError {
                status: StatusCode::TOO_MANY_REQUESTS,
                ..ApiError::forbidden(message)
            },
            K::Unavailable => ApiError::unavailable(message),
            K::NotFound | K::AlreadyExists | K::Conflict | K::Internal => {
                ApiError::internal(message)
            }
        };
        ApiError {
            reason,
            retry_after: e.retry_after_secs(),
            ..err
        }
    }
}

impl From<kiln_store::Error> for ApiError {
    fn from(e: kiln_store::Error) -> Self {
        ApiError::internal(e.to_string())
    }
}

impl From<kiln_core::Error> for ApiError {
    fn from(e: kiln_core::Error) -> Self {
        match e {
            kiln_core::Error::InvalidCid { .. }
            | kiln_core::Error::InvalidPath(_)
            | kiln_core::Error::Options(_)
            | kiln_core::Error::BadName { .. }
            | kiln_core::Error::TooLarge { .. } => ApiError::bad_request(e.to_string()),
            kiln_core::Error::NotFound(_) | kiln_core::Error::NoSuchLink { .. } => ApiError {
                ..ApiError::internal(e.to_string())
            },
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, "{}", self.message);
        }
        let mut body =
            serde_json::json!({"Message": self.message, "Code": self.code, "Type": "error"});
        if let Some(r) = self.reason {
            body["Reason"] = serde_json::json!(r);
        }
        let mut resp = (self.status, Json(body)).into_response();
        refusal_headers(&mut resp, self.retry_after);
        resp
    }
}

/// The headers of a refusal, whatever the protocol: `WWW-Authenticate` on a 401 (a bearer
/// token is what it takes), `Retry-After` when the node said when to try again.
pub(crate) fn refusal_headers(resp: &mut Response, retry_after: Option<u64>) {
    use axum::http::{HeaderValue, header};
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"kiln\""),
        );
    }
    if let Some(secs) = retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
}

/// The HTTP status of each of the node's error kinds, as kiln's API, the gateway and the
/// web UI answer them (the Kubo RPC keeps kubo's table: [`ApiError`]).
pub(crate) fn kind_status(kind: kiln_node::ErrorKind) -> StatusCode {
    use kiln_node::ErrorKind as K;
    match kind {
        K::NotFound => StatusCode::NOT_FOUND,
        K::AlreadyExists | K::Conflict => StatusCode::CONFLICT,
        K::InvalidInput => StatusCode::BAD_REQUEST,
        K::Forbidden => StatusCode::FORBIDDEN,
        K::Unauthenticated => StatusCode::UNAUTHORIZED,
        K::Quota => StatusCode::TOO_MANY_REQUESTS,
        K::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        K::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error of kiln's own API (`/api/kiln/v1/`): the node's error kinds rendered with their
/// HTTP status (404 not found, 409 already exists or conflict, 400 invalid input, 401, 403,
/// 429, 503, 500), in the same JSON body as the Kubo RPC's errors.
#[derive(Debug)]
pub struct KilnError(ApiError);

impl KilnError {
    /// A malformed request (400).
    pub fn bad_request(message: impl Into<String>) -> Self {
        KilnError(ApiError::bad_request(message))
    }

    /// Nothing by that name (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        KilnError(ApiError::not_found(message))
    }

    /// A request body over its limit (413).
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        KilnError(ApiError::payload_too_large(message))
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0.message
    }
}

impl From<kiln_node::Error> for KilnError {
    fn from(e: kiln_node::Error) -> Self {
        // Kubo's body shape (with its `Code`), kiln's status.
        let status = kind_status(e.kind());
        KilnError(ApiError {
            status,
            ..ApiError::from(e)
        })
    }
}

impl From<kiln_core::Error> for KilnError {
    fn from(e: kiln_core::Error) -> Self {
        KilnError::from(kiln_node::Error::from(e))
    }
}

impl From<kiln_store::Error> for KilnError {
    fn from(e: kiln_store::Error) -> Self {
        KilnError::from(kiln_node::Error::from(e))
    }
}

impl From<tokio::task::JoinError> for KilnError {
    fn from(e: tokio::task::JoinError) -> Self {
        KilnError(ApiError::from(e))
    }
}

impl IntoResponse for KilnError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_node::{Error, ErrorKind as K};

    /// The two tables differ where kubo's does: a missing thing is a 500 on the RPC and a
    /// 404 on kiln's API; a conflict is a 500 and a 409.
    #[test]
    fn each_table_renders_the_kinds_its_own_way() {
        let cases = [
            (K::NotFound, 500, 404),
            (K::AlreadyExists, 500, 409),
            (K::Conflict, 500, 409),
            (K::InvalidInput, 400, 400),
            (K::Forbidden, 403, 403),
            (K::Unauthenticated, 401, 401),
            (K::Quota, 429, 429),
            (K::Unavailable, 503, 503),
            (K::Internal, 500, 500),
        ];
        for (kind, kubo, kiln) in cases {
            let rpc = ApiError::from(Error::new(kind, "m"));
            let own = KilnError::from(Error::new(kind, "m"));
            assert_eq!(rpc.status().as_u16(), kubo, "{kind:?} on the RPC");
            assert_eq!(own.status().as_u16(), kiln, "{kind:?} on kiln's API");
            assert_eq!(own.message(), "m");
        }
        let missing = kiln_core::Error::NotFound(kiln_core::cids::cid_of(
            cid::Version::V1,
            kiln_core::cids::RAW,
            b"x",
        ));
        assert_eq!(KilnError::from(missing).status(), StatusCode::NOT_FOUND);
    }
}
