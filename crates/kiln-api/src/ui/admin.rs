//! The administrators' pages: `GET /ui/users` (the node's users and their roles per
//! namespace; `POST /ui/users` adds one, `…/grant`, `…/revoke` and `…/remove` change them),
//! `GET /ui/tokens` (every token issued; `POST /ui/tokens/revoke`) and `GET /ui/invites`
//! (`POST /ui/invites` makes one and shows its code, once). Each page and form goes through
//! the node layer as the signed-in caller, which refuses anyone but an administrator; a
//! change answers with a 303 back to its page, a failure with the page, the error and its
//! status.

use super::{Nav, SameOrigin, UiCaller, UiError, blocking, layout, param, short_did};
use crate::AppState;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kiln_node::Caller;
use kiln_node::users::{ALL, Role};
use maud::{Markup, html};
use std::time::{Duration, UNIX_EPOCH};

type Fields = Form<Vec<(String, String)>>;

/// A form field, trimmed ("" when absent).
fn field(f: &[(String, String)], name: &str) -> String {
    param(f, name).unwrap_or("").trim().to_string()
}

fn when_ms(ms: i64) -> String {
    super::utc(UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

fn when_secs(secs: i64) -> String {
    super::utc(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0)))
}

/// A namespace from a form: empty means the default one.
fn namespace(f: &[(String, String)]) -> String {
    let ns = field(f, "namespace");
    if ns.is_empty() {
        kiln_node::auth::DEFAULT_NAMESPACE.to_string()
    } else {
        ns
    }
}

fn role_options(selected: &str) -> Markup {
    html! {
        @for r in ["reader", "writer", "maintainer", "admin"] {
            option value=(r) selected[r == selected] { (r) }
        }
    }
}

fn did_cell(did: &str) -> Markup {
    html! { code.cid title=(did) { (short_did(did)) } }
}

// ---- Users ----------------------------------------------------------------------------

pub(super) async fn users(State(s): State<AppState>, UiCaller(caller): UiCaller) -> Response {
    users_page(&s, &caller, None).await
}

async fn users_page(s: &AppState, caller: &Caller, error: Option<UiError>) -> Response {
    let c = caller.clone();
    let listed = blocking(s, move |st| Ok(kiln_node::users::list(st, &c)?)).await;
    let users = match listed {
        Ok(u) => u,
        Err(e) => return e.page("Users", Nav::Users, html! {}),
    };
    let status = error.as_ref().map_or(StatusCode::OK, UiError::status);
    let page = layout(
        "Users",
        Nav::Users,
        html! {
            h1 { "Users" }
            @if let Some(e) = &error { (e.panel()) }
            p.muted {
                "Each user is a did:key identity with a role per namespace (reader < writer < maintainer < admin; "
                code { "*" } " is every namespace). A user signs in with "
                code { "kiln token create" } " or an invite."
            }
            section aria-labelledby="users-h" {
                h2 #users-h { "Users " span.muted { "(" (users.len()) ")" } }
                @if users.is_empty() {
                    p.muted { "No users yet." }
                } @else {
                    table.list #users {
                        thead { tr {
                            th scope="col" { "Identity" } th scope="col" { "Name" }
                            th scope="col" { "Roles" } th scope="col" { "Added" }
                            th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody {
                            @for u in &users {
                                tr data-did=(u.did) {
                                    td data-label="Identity" { (did_cell(&u.did)) }
                                    td data-label="Name" { @if let Some(n) = &u.name { (n) } @else { span.muted { "—" } } }
                                    td data-label="Roles" {
                                        @if u.grants.is_empty() { span.muted { "none" } }
                                        ul.grants {
                                            @for (ns, role) in &u.grants {
                                                li {
                                                    span.tag { (role) } " in " (kiln_node::users::shown(ns)) " "
                                                    form.inline-action method="post" action="/ui/users/revoke" {
                                                        input type="hidden" name="did" value=(u.did);
                                                        input type="hidden" name="namespace" value=(ns);
                                                        button.danger type="submit" {
                                                            "Revoke" span.visually-hidden { " " (role) " in " (ns) " from " (u.did) }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                    td data-label="Added" { time { (when_ms(u.added_ms)) } " by " (short_did(&u.added_by)) }
                                    td {
                                        form.inline-action method="post" action="/ui/users/remove" {
                                            input type="hidden" name="did" value=(u.did);
                                            button.danger type="submit" {
                                                "Remove" span.visually-hidden { " user " (u.did) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="grant-h" {
                h2 #grant-h { "Give a role" }
                form.stack method="post" action="/ui/users/grant" {
                    div {
                        label for="grant-did" { "User" }
                        select #grant-did name="did" required {
                            @for u in &users { option value=(u.did) { (u.name.as_deref().unwrap_or(&u.did)) } }
                        }
                    }
                    div { label for="grant-role" { "Role" } select #grant-role name="role" { (role_options("reader")) } }
                    div {
                        label for="grant-ns" { "Namespace " span.muted { "(* for every one)" } }
                        input #grant-ns type="text" name="namespace" value="default" autocomplete="off" spellcheck="false";
                    }
                    div { button type="submit" { "Give the role" } }
                }
            }
            section aria-labelledby="add-h" {
                h2 #add-h { "Add a user" }
                form.stack method="post" action="/ui/users" {
                    div {
                        label for="user-did" { "Identity " span.muted { "(did:key:z6Mk…, from kiln identity show)" } }
                        input #user-did type="text" name="did" required autocomplete="off" spellcheck="false";
                    }
                    div { label for="user-name" { "Name " span.muted { "(optional)" } } input #user-name type="text" name="name" maxlength="200"; }
                    div { label for="user-role" { "Role" } select #user-role name="role" { (role_options("reader")) } }
                    div {
                        label for="user-ns" { "Namespace" }
                        input #user-ns type="text" name="namespace" value="default" autocomplete="off" spellcheck="false";
                    }
                    div { button type="submit" { "Add" } }
                }
            }
        },
    );
    (status, page).into_response()
}

/// Run a change to the users as `caller`, then back to the page (or the page with the error).
async fn users_change(
    s: &AppState,
    caller: &Caller,
    change: impl FnOnce(&kiln_store::Store, &Caller) -> kiln_node::Result<()> + Send + 'static,
) -> Response {
    let c = caller.clone();
    match blocking(s, move |st| Ok(change(st, &c)?)).await {
        Ok(()) => Redirect::to("/ui/users").into_response(),
        Err(e) => users_page(s, caller, Some(e)).await,
    }
}

fn role(f: &[(String, String)]) -> kiln_node::Result<Role> {
    Role::parse(&field(f, "role"))
}

pub(super) async fn user_add(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    users_change(&s, &caller, move |st, c| {
        let name = Some(field(&f, "name")).filter(|n| !n.is_empty());
        let ns = namespace(&f);
        kiln_node::users::add(
            st,
            c,
            &field(&f, "did"),
            name.as_deref(),
            Some((role(&f)?, &ns)),
        )
        .map(drop)
    })
    .await
}

pub(super) async fn user_grant(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    users_change(&s, &caller, move |st, c| {
        kiln_node::users::grant(st, c, &field(&f, "did"), role(&f)?, &namespace(&f)).map(drop)
    })
    .await
}

pub(super) async fn user_revoke(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    users_change(&s, &caller, move |st, c| {
        kiln_node::users::revoke(st, c, &field(&f, "did"), &namespace(&f)).map(drop)
    })
    .await
}

pub(super) async fn user_remove(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    users_change(&s, &caller, move |st, c| {
        kiln_node::users::remove(st, c, &field(&f, "did"))
    })
    .await
}

// ---- Tokens ---------------------------------------------------------------------------

pub(super) async fn tokens(State(s): State<AppState>, UiCaller(caller): UiCaller) -> Response {
    tokens_page(&s, &caller, None).await
}

async fn tokens_page(s: &AppState, caller: &Caller, error: Option<UiError>) -> Response {
    // Every token is an administrator's to list here (a user lists its own with kiln token ls).
    if let Err(e) = kiln_node::auth::authorize(caller, kiln_node::auth::Op::Admin, ALL) {
        return UiError::from(e).page("Tokens", Nav::Tokens, html! {});
    }
    let c = caller.clone();
    let listed = blocking(s, move |st| Ok(kiln_node::tokens::list(st, &c, None)?)).await;
    let mut tokens = match listed {
        Ok(t) => t,
        Err(e) => return e.page("Tokens", Nav::Tokens, html! {}),
    };
    tokens.sort_by_key(|t| std::cmp::Reverse(t.issued_ms));
    let now = kiln_id::token::now() as i64;
    let status = error.as_ref().map_or(StatusCode::OK, UiError::status);
    let page = layout(
        "Tokens",
        Nav::Tokens,
        html! {
            h1 { "Tokens" }
            @if let Some(e) = &error { (e.panel()) }
            p.muted {
                "The capability tokens this node issued (never the tokens themselves: only their ids). "
                "Revoking one refuses it, and every token narrowed from it, on every route at once."
            }
            @if tokens.is_empty() {
                p.muted { "No tokens issued yet." }
            } @else {
                table.list #tokens {
                    thead { tr {
                        th scope="col" { "Id" } th scope="col" { "Holder" } th scope="col" { "Note" }
                        th scope="col" { "Issued" } th scope="col" { "Expires" } th scope="col" { "State" }
                        th scope="col" { span.visually-hidden { "Actions" } }
                    } }
                    tbody {
                        @for t in &tokens {
                            @let live = t.revoked_ms.is_none() && t.expires > now;
                            tr data-id=(t.id) {
                                td data-label="Id" { code.cid title=(t.id) { (t.id.get(..12).unwrap_or(&t.id)) } }
                                td data-label="Holder" { (did_cell(&t.did)) }
                                td data-label="Note" { (t.note) }
                                td data-label="Issued" { time { (when_ms(t.issued_ms)) } " by " (short_did(&t.issued_by)) }
                                td data-label="Expires" { time { (when_secs(t.expires)) } }
                                td data-label="State" {
                                    @if let Some(r) = t.revoked_ms { span.tag.state-failed { "revoked" } " " time { (when_ms(r)) } }
                                    @else if !live { span.tag { "expired" } }
                                    @else { span.tag.state-ok { "live" } }
                                }
                                td {
                                    @if live {
                                        form.inline-action method="post" action="/ui/tokens/revoke" {
                                            input type="hidden" name="id" value=(t.id);
                                            button.danger type="submit" { "Revoke" span.visually-hidden { " token " (t.id) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    (status, page).into_response()
}

pub(super) async fn token_revoke(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    let (c, auth) = (caller.clone(), s.auth.clone());
    let id = field(&f, "id");
    match blocking(&s, move |st| {
        Ok(kiln_node::tokens::revoke(st, &auth, &c, &id)?)
    })
    .await
    {
        Ok(_) => Redirect::to("/ui/tokens").into_response(),
        Err(e) => tokens_page(&s, &caller, Some(e)).await,
    }
}

// ---- Invites --------------------------------------------------------------------------

pub(super) async fn invites(State(s): State<AppState>, UiCaller(caller): UiCaller) -> Response {
    invites_page(&s, &caller, None, None).await
}

/// A code just made, shown once with the command that uses it.
struct Made {
    code: String,
    join: String,
    role: String,
    namespace: String,
    expires_ms: i64,
}

async fn invites_page(
    s: &AppState,
    caller: &Caller,
    made: Option<Made>,
    error: Option<UiError>,
) -> Response {
    let c = caller.clone();
    let listed = blocking(s, move |st| Ok(kiln_node::invites::list(st, &c)?)).await;
    let mut invites = match listed {
        Ok(i) => i,
        Err(e) => return e.page("Invites", Nav::Invites, html! {}),
    };
    invites.sort_by_key(|i| std::cmp::Reverse(i.created_ms));
    let now_ms = kiln_id::token::now() as i64 * 1000;
    let status = error.as_ref().map_or(StatusCode::OK, UiError::status);
    let page = layout(
        "Invites",
        Nav::Invites,
        html! {
            h1 { "Invites" }
            @if let Some(e) = &error { (e.panel()) }
            @if let Some(m) = &made {
                section.made #invite-made role="status" aria-labelledby="made-h" {
                    h2 #made-h { "Invite made" }
                    p { "It grants " span.tag { (m.role) } " in " (kiln_node::users::shown(&m.namespace))
                        ", once, until " time { (when_ms(m.expires_ms)) } ". Give the code to the person you invite; it is shown only now." }
                    p { "Code: " code #invite-code { (m.code) } }
                    p { "They run:" }
                    pre #invite-join { (m.join) }
                }
            }
            section aria-labelledby="new-h" {
                h2 #new-h { "New invite" }
                form.stack method="post" action="/ui/invites" {
                    div { label for="invite-role" { "Role" } select #invite-role name="role" { (role_options("writer")) } }
                    div {
                        label for="invite-ns" { "Namespace " span.muted { "(* for every one)" } }
                        input #invite-ns type="text" name="namespace" value="default" autocomplete="off" spellcheck="false";
                    }
                    div {
                        label for="invite-ttl" { "Good for " span.muted { "(30m, 24h, 7d)" } }
                        input #invite-ttl type="text" name="expires" value="24h" autocomplete="off" spellcheck="false";
                    }
                    div { button type="submit" { "Make an invite" } }
                }
            }
            section aria-labelledby="invites-h" {
                h2 #invites-h { "Invites " span.muted { "(" (invites.len()) ")" } }
                @if invites.is_empty() {
                    p.muted { "No invites yet." }
                } @else {
                    table.list #invites {
                        thead { tr {
                            th scope="col" { "Id" } th scope="col" { "Grants" } th scope="col" { "Made" }
                            th scope="col" { "Expires" } th scope="col" { "State" }
                        } }
                        tbody {
                            @for i in &invites {
                                tr data-id=(i.id) {
                                    td data-label="Id" { code.cid title=(i.id) { (i.id.get(..12).unwrap_or(&i.id)) } }
                                    td data-label="Grants" { span.tag { (i.role) } " in " (kiln_node::users::shown(&i.namespace)) }
                                    td data-label="Made" { time { (when_ms(i.created_ms)) } " by " (short_did(&i.created_by)) }
                                    td data-label="Expires" { time { (when_ms(i.expires_ms)) } }
                                    td data-label="State" {
                                        @if let Some(u) = &i.used_by { span.tag.state-ok { "used" } " by " (did_cell(u)) }
                                        @else if i.expires_ms <= now_ms { span.tag { "expired" } }
                                        @else { span.tag.state-running { "waiting" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    );
    let mut resp = (status, page).into_response();
    // A page holding a code is never kept (the UI's default is no-store already; say it).
    if made.is_some() {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            axum::http::HeaderValue::from_static("no-store"),
        );
    }
    resp
}

pub(super) async fn invite_create(
    State(s): State<AppState>,
    UiCaller(caller): UiCaller,
    tls: Option<axum::Extension<crate::tls::OverTls>>,
    headers: HeaderMap,
    _: SameOrigin,
    Form(f): Fields,
) -> Response {
    let ttl = match kiln_wire::parse_duration(&field(&f, "expires")) {
        Ok(t) => t,
        Err(e) => {
            return invites_page(&s, &caller, None, Some(UiError::bad_request(e))).await;
        }
    };
    let (c, auth, addresses) = (caller.clone(), s.auth.clone(), s.node.addresses.clone());
    let (role, ns) = (field(&f, "role"), field(&f, "namespace"));
    let made = blocking(&s, move |st| {
        let ns = Some(ns.as_str()).filter(|n| !n.is_empty());
        Ok(kiln_node::invites::create(
            st,
            &c,
            auth.node_key(),
            &role,
            ns,
            ttl,
            addresses,
        )?)
    })
    .await;
    match made {
        Ok(m) => {
            // The address the administrator reached this node at is one the invitee can
            // likely reach too.
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("127.0.0.1:5001");
            let scheme = if tls.is_some() { "https" } else { "http" };
            let made = Made {
                join: format!("kiln join {scheme}://{host} {}", m.code),
                code: m.code,
                role: m.role,
                namespace: m.namespace,
                expires_ms: m.expires_ms,
            };
            invites_page(&s, &caller, Some(made), None).await
        }
        Err(e) => invites_page(&s, &caller, None, Some(e)).await,
    }
}
