//! One error type for every handler, rendered per protocol.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error as the Kubo RPC reports it: `{"Message", "Code", "Type": "error"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    not_found: bool,
    message: String,
    /// Kubo's error code: 0 = normal, 1 = client (bad arguments).
    code: u8,
}

impl ApiError {
    /// A bad request (unknown or malformed arguments).
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            not_found: false,
            message: message.into(),
            code: 1,
        }
    }

    /// A failure of the operation itself.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            not_found: false,
            message: message.into(),
            code: 0,
        }
    }

    /// A request the node refuses to act on (403).
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            not_found: false,
            message: message.into(),
            code: 1,
        }
    }

    /// Content that is not in the store (404).
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            not_found: true,
            message: message.into(),
            code: 0,
        }
    }

    /// A request body over the configured limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            not_found: false,
            message: message.into(),
            code: 1,
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
            not_found: false,
            message: message.into(),
            code: 0,
        }
    }

    /// Wrong HTTP method: the RPC takes POST only.
    pub fn method_not_allowed() -> Self {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            not_found: false,
            message: "405 - Method Not Allowed: the RPC API takes POST".into(),
            code: 1,
        }
    }
}

impl ApiError {
    /// True when the error is about content that is not in the store.
    pub fn is_not_found(&self) -> bool {
        self.not_found
    }

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
impl ApiError {
    /// kiln's own API's rendering of a node error: the HTTP status of its kind (404 for
    /// not found, 409 for a conflict), in the same JSON shape. The Kubo RPC keeps kubo's
    /// table instead (`From<kiln_node::Error>`).
    pub fn kiln(e: kiln_node::Error) -> Self {
        use kiln_node::ErrorKind as K;
        let status = match e.kind() {
            K::NotFound => return ApiError::not_found(e.message()),
            K::AlreadyExists | K::Conflict => StatusCode::CONFLICT,
            _ => return ApiError::from(e),
        };
        ApiError {
            status,
            ..ApiError::internal(e.message())
        }
    }
}

impl From<kiln_node::Error> for ApiError {
    fn from(e: kiln_node::Error) -> Self {
        use kiln_node::ErrorKind as K;
        let message = e.message().to_string();
        match e.kind() {
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
            K::NotFound => ApiError {
                not_found: true,
                ..ApiError::internal(message)
            },
            K::AlreadyExists | K::Conflict | K::Internal => ApiError::internal(message),
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
                not_found: true,
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
        let body = serde_json::json!({"Message": self.message, "Code": self.code, "Type": "error"});
        (self.status, Json(body)).into_response()
    }
}
