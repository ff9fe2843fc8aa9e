//! Who a request comes from: the extractors that turn a connection and its headers into the
//! node layer's [`Caller`], one per protocol (each rejects in its own error shape), and the
//! routes that sign in and manage tokens (`/api/kiln/v1/auth/…`, `/api/kiln/v1/tokens`).
//!
//! - On the repository's Unix socket, a peer whose credentials are the daemon's own user is
//!   the local administrator; any other peer is nobody.
//! - `Authorization: Bearer kiln1_…` is checked by [`kiln_node::auth::Auth::authenticate`].
//! - Otherwise the caller is nobody ([`Who::Anonymous`]) — unless the operator started the
//!   daemon with `--open-loopback`, and then a TCP peer on a loopback address is the local
//!   administrator.
//!
//! What each caller may do is the node layer's to say: the extractors only say who it is.

use crate::types::{
    ChallengeRequest, ChallengeView, LoginRequest, RevokeRequest, RevokedView, TokenList,
    TokenMinted, TokenRequest, WhoamiView,
};
use crate::{ApiError, AppState, KilnError};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use kiln_node::{Caller, Via, Who};
use std::net::SocketAddr;
use std::time::Duration;

/// How a connection reached the node (put in each request's extensions by the server).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Over TCP, from this address.
    Tcp(SocketAddr),
    /// Over the repository's Unix socket; `owner` when its credentials are the daemon's user.
    Unix {
        /// The peer runs as the user the daemon runs as.
        owner: bool,
    },
}

/// `router` for use in this process (tests, fuzzing): every request it is given comes from
/// the local administrator, as if over the repository's Unix socket.
pub fn as_local(router: Router) -> Router {
    router.layer(axum::middleware::map_request(
        |mut req: axum::extract::Request| async move {
            req.extensions_mut().insert(Peer::Unix { owner: true });
            req
        },
    ))
}

/// Who asks, from the request's connection and headers; an error for a token that does not
/// hold (a request that sends a bad token is refused, never served as anonymous).
pub(crate) async fn who(parts: &Parts, s: &AppState) -> Result<Who, kiln_node::Error> {
    let peer = parts.extensions.get::<Peer>().copied();
    if let (Some(Peer::Tcp(a)), Some(limit)) = (peer, &s.access.per_ip)
        && (s.access.limit_loopback || !a.ip().is_loopback())
    {
        limit.take(&a.ip(), &a.ip())?;
    }
    if let Some(token) = bearer(parts) {
        return prove(s, token).await;
    }
    Ok(match peer {
        Some(Peer::Unix { owner: true }) => Who::Local,
        Some(Peer::Tcp(a)) if s.access.open_loopback && a.ip().is_loopback() => Who::Local,
        _ => Who::Anonymous,
    })
}

/// Who `token` proves (in memory when it can, else on the blocking pool).
pub(crate) async fn prove(s: &AppState, token: String) -> Result<Who, kiln_node::Error> {
    if let Some(known) = s.auth.authenticate_in_memory(&s.store, &token) {
        return known;
    }
    let (auth, store) = (s.auth.clone(), s.store.clone());
    tokio::task::spawn_blocking(move || auth.authenticate(&store, &token))
        .await
        .map_err(|e| kiln_node::Error::internal(format!("task failed: {e}")))?
}

/// The bearer token of a request, if it sends one.
fn bearer(parts: &Parts) -> Option<String> {
    bearer_of(&parts.headers)
}

/// The bearer token in `headers`, if there is one.
pub(crate) fn bearer_of(headers: &axum::http::HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

macro_rules! caller_extractor {
    ($(#[$doc:meta])* $name:ident, $via:expr, $rejection:ty) => {
        $(#[$doc])*
        pub(crate) struct $name(pub Caller);

        impl FromRequestParts<AppState> for $name {
            type Rejection = $rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                s: &AppState,
            ) -> Result<Self, Self::Rejection> {
                let who = who(parts, s).await?;
                Ok($name(Caller { who, via: $via }))
            }
        }
    };
}

caller_extractor!(
    /// The caller of a Kubo RPC request.
    RpcCaller,
    Via::Rpc,
    ApiError
);
caller_extractor!(
    /// The caller of a request to kiln's own API.
    ApiCaller,
    Via::Api,
    KilnError
);
caller_extractor!(
    /// The caller of a gateway request.
    GatewayCaller,
    Via::Gateway,
    crate::gateway::GatewayError
);

/// Every path of [`router`] (kept in step with it; the OpenAPI test checks each).
#[cfg(test)]
pub const PATHS: [&str; 10] = [
    "/api/kiln/v1/invites",
    "/api/kiln/v1/invites/{id}",
    "/api/kiln/v1/invites/{id}/join",
    "/api/kiln/v1/auth/challenge",
    "/api/kiln/v1/auth/token",
    "/api/kiln/v1/auth/whoami",
    "/api/kiln/v1/tokens",
    "/api/kiln/v1/tokens/revoke",
    "/api/kiln/v1/ui/login",
    "/api/kiln/v1/ui/logout",
];

/// The routes of signing in and of tokens.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/kiln/v1/auth/challenge", post(challenge))
        .route("/api/kiln/v1/auth/token", post(login))
        .route("/api/kiln/v1/auth/whoami", get(whoami))
        .route("/api/kiln/v1/tokens", get(list).post(create))
        .route("/api/kiln/v1/tokens/revoke", post(revoke))
        .route("/api/kiln/v1/invites", get(invites).post(invite_create))
        .route("/api/kiln/v1/invites/{id}", get(invite_sealed))
        .route("/api/kiln/v1/invites/{id}/join", post(invite_join))
        .route("/api/kiln/v1/ui/login", post(ui_link))
        .route("/api/kiln/v1/ui/logout", post(ui_logout_all))
}

/// `POST /api/kiln/v1/invites {role, namespace?, ttl_secs}`: a new invite (administrators).
async fn invite_create(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Body<crate::types::InviteRequest>,
) -> Result<Json<crate::types::InviteCreated>, KilnError> {
    let req = body(b)?;
    let (store, auth, addresses) = (s.store.clone(), s.auth.clone(), s.node.addresses.clone());
    let made = tokio::task::spawn_blocking(move || {
        kiln_node::invites::create(
            &store,
            &caller,
            auth.node_key(),
            &req.role,
            req.namespace.as_deref(),
            Duration::from_secs(req.ttl_secs),
            addresses,
        )
    })
    .await??;
    Ok(Json(made))
}

/// `GET /api/kiln/v1/invites`: every invite (administrators).
async fn invites(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<crate::types::InviteList>, KilnError> {
    let store = s.store.clone();
    let invites =
        tokio::task::spawn_blocking(move || kiln_node::invites::list(&store, &caller)).await??;
    Ok(Json(crate::types::InviteList { invites }))
}

/// `GET /api/kiln/v1/invites/{id}`: a live invite's sealed bundle (anyone, rate-limited).
async fn invite_sealed(
    State(s): State<AppState>,
    _rate_limited: ApiCaller,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Json<crate::types::SealedInvite>, KilnError> {
    let store = s.store.clone();
    let sealed =
        tokio::task::spawn_blocking(move || kiln_node::invites::sealed(&store, &id)).await??;
    Ok(Json(crate::types::SealedInvite {
        sealed: sealed.iter().map(|b| format!("{b:02x}")).collect(),
    }))
}

/// `POST /api/kiln/v1/invites/{id}/join {did, proof, signature}`: use an invite.
async fn invite_join(
    State(s): State<AppState>,
    _rate_limited: ApiCaller,
    axum::extract::Path(id): axum::extract::Path<String>,
    b: Body<crate::types::JoinRequest>,
) -> Result<Json<crate::types::JoinedView>, KilnError> {
    let req = body(b)?;
    let signature = kiln_node::invites::unhex(&req.signature)
        .ok_or_else(|| KilnError::bad_request("signature must be hex"))?;
    let (store, node) = (s.store.clone(), s.node.did.clone());
    let joined = tokio::task::spawn_blocking(move || {
        kiln_node::invites::join(&store, &node, &id, &req.did, &req.proof, &signature)
    })
    .await??;
    Ok(Json(joined))
}

/// `POST /api/kiln/v1/ui/login`: a one-time sign-in link for the web UI, acting as the
/// caller: the local administrator, or the identity of the token it sends (whose session
/// then lives and dies with that token).
async fn ui_link(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    headers: axum::http::HeaderMap,
) -> Result<Json<crate::types::UiLinkView>, KilnError> {
    let link = s
        .auth
        .sessions()
        .link(&caller, bearer_of(&headers).as_deref())?;
    Ok(Json(crate::types::UiLinkView {
        path: format!("/ui/login?code={}", link.code),
        expires: link.expires,
    }))
}

/// `POST /api/kiln/v1/ui/logout`: end every web UI session (administrators).
async fn ui_logout_all(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
) -> Result<Json<crate::types::SessionsEndedView>, KilnError> {
    let ended = s.auth.sessions().end_all(&caller)?;
    Ok(Json(crate::types::SessionsEndedView { ended }))
}

type Body<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

fn body<T>(b: Body<T>) -> Result<T, KilnError> {
    b.map(|Json(t)| t)
        .map_err(|e| KilnError::bad_request(e.body_text()))
}

fn ttl(secs: Option<u64>) -> Option<Duration> {
    secs.map(Duration::from_secs)
}

fn minted(m: kiln_id::token::Minted) -> Json<TokenMinted> {
    Json(TokenMinted {
        token: m.token,
        id: m.id,
        expires: m.expires,
    })
}

/// `POST /api/kiln/v1/auth/challenge {did}`: a nonce for `did` to sign.
async fn challenge(
    State(s): State<AppState>,
    _rate_limited: ApiCaller,
    b: Body<ChallengeRequest>,
) -> Result<Json<ChallengeView>, KilnError> {
    let req = body(b)?;
    let c = s.auth.challenge(&req.did)?;
    Ok(Json(ChallengeView {
        nonce: c.nonce,
        node: c.node,
        expires: c.expires,
    }))
}

/// `POST /api/kiln/v1/auth/token {did, nonce, signature, ttl_secs?, note?}`: a token for an
/// identity that signed its challenge.
async fn login(
    State(s): State<AppState>,
    _rate_limited: ApiCaller,
    b: Body<LoginRequest>,
) -> Result<Json<TokenMinted>, KilnError> {
    let req = body(b)?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(req.signature.as_bytes())
        .map_err(|_| KilnError::bad_request("signature: not base64"))?;
    let (auth, store) = (s.auth.clone(), s.store.clone());
    let m = tokio::task::spawn_blocking(move || {
        kiln_node::tokens::login(
            &store,
            &auth,
            Via::Api,
            &req.did,
            &req.nonce,
            &sig,
            ttl(req.ttl_secs),
            req.note.as_deref().unwrap_or(""),
        )
    })
    .await??;
    Ok(minted(m))
}

/// `GET /api/kiln/v1/auth/whoami`: who the node takes the caller for.
async fn whoami(ApiCaller(caller): ApiCaller) -> Json<WhoamiView> {
    let (did, local, roles, token) = match &caller.who {
        Who::Local => (None, true, Vec::new(), None),
        Who::User(id) => (
            Some(id.did.clone()),
            false,
            id.grants.clone(),
            Some(id.token_id().to_string()),
        ),
        _ => (None, false, Vec::new(), None),
    };
    Json(WhoamiView {
        did,
        local,
        roles: roles
            .into_iter()
            .map(|(namespace, role)| crate::types::RoleView { namespace, role })
            .collect(),
        token,
    })
}

/// `POST /api/kiln/v1/tokens {did?, roles?, ttl_secs?, note?}`: issue a token.
async fn create(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Body<TokenRequest>,
) -> Result<Json<TokenMinted>, KilnError> {
    let req = body(b)?;
    let (auth, store) = (s.auth.clone(), s.store.clone());
    let m = tokio::task::spawn_blocking(move || {
        kiln_node::tokens::create(
            &store,
            &auth,
            &caller,
            kiln_node::tokens::Request {
                did: req.did,
                roles: req
                    .roles
                    .map(|r| r.into_iter().map(|g| (g.namespace, g.role)).collect()),
                ttl: ttl(req.ttl_secs),
                note: req.note.unwrap_or_default(),
            },
        )
    })
    .await??;
    Ok(minted(m))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    did: Option<String>,
}

/// `GET /api/kiln/v1/tokens[?did=]`: the tokens issued (a user's own; all for an admin).
async fn list(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TokenList>, KilnError> {
    let Query(q) = q.map_err(|e| KilnError::bad_request(e.body_text()))?;
    let store = s.store.clone();
    let tokens = tokio::task::spawn_blocking(move || {
        kiln_node::tokens::list(&store, &caller, q.did.as_deref())
    })
    .await??;
    Ok(Json(TokenList {
        tokens: tokens
            .into_iter()
            .map(|t| kiln_node::view::token(&t))
            .collect(),
    }))
}

/// `POST /api/kiln/v1/tokens/revoke {token}`: revoke a token by id or whole (in the body, so
/// that no token is ever written in a URL or an access log).
async fn revoke(
    State(s): State<AppState>,
    ApiCaller(caller): ApiCaller,
    b: Body<RevokeRequest>,
) -> Result<Json<RevokedView>, KilnError> {
    let req = body(b)?;
    let (auth, store) = (s.auth.clone(), s.store.clone());
    let id = tokio::task::spawn_blocking(move || {
        kiln_node::tokens::revoke(&store, &auth, &caller, &req.token)
    })
    .await??;
    Ok(Json(RevokedView { id }))
}
