//! Logging in and out, who is looking ([`Viewer`]), asking the request
//! handler on their behalf, and the page layout every view shares.

use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use suanli_proto::{ErrorCode, Request, Response as Answer, Role};

use super::Http;
use super::session::{COOKIE, caller_of};
use crate::auth::token_hash;
use crate::server::{Caller, blocking};

pub(crate) use super::views::{earnings, job, jobs, overview, usage};

/// Longest token the login form takes (real ones are 67 characters).
const MAX_TOKEN_CHARS: usize = 256;

/// The logged-in token's role and name; a page without a live session
/// redirects to `/login`.
pub(crate) struct Viewer(pub(crate) Caller);

impl FromRequestParts<Arc<Http>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, http: &Arc<Http>) -> Result<Self, Response> {
        let to_login = || Redirect::to("/login").into_response();
        let Some(id) = session_cookie(&parts.headers) else {
            return Err(to_login());
        };
        let Some(token) = http.sessions.token_of(&id) else {
            return Err(to_login());
        };
        let shared = http.shared.clone();
        match blocking(move || caller_of(&shared, &token)).await {
            Ok(Ok(Some(caller))) => Ok(Viewer(caller)),
            Ok(Ok(None)) => {
                // Revoked (or removed) since the login: the session ends.
                http.sessions.close(&id);
                Err(to_login())
            }
            Ok(Err(e)) => Err(internal(&e.to_string())),
            Err(e) => Err(internal(&e)),
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_owned())
}

/// Asks the coordinator's request handler as `caller`, under the same role
/// table as a QUIC client: the dashboard can show nothing the CLI could not.
pub(crate) async fn ask(
    http: &Http,
    caller: &Caller,
    request: Request,
) -> Result<Answer, Response> {
    if let Err(reason) = crate::auth::allowed(caller.role, &request) {
        return Err(failure(StatusCode::FORBIDDEN, &reason));
    }
    let (shared, caller) = (http.shared.clone(), caller.clone());
    let answer = blocking(move || crate::server::handle(&shared, &caller, request))
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e.to_string()))?;
    match answer {
        Answer::Error { code, message } => Err(failure(status_of(code), &message)),
        answer => Ok(answer),
    }
}

fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// An internal failure: the details go to the log, the page says only
/// that something failed (it may be the unauthenticated login page).
pub(crate) fn internal(detail: &str) -> Response {
    tracing::error!(%detail, "dashboard request failed");
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error (details in the coordinator's log)",
    )
}

/// A page that says what went wrong, with its status.
pub(crate) fn failure(status: StatusCode, message: &str) -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Error")) }
            body { main { h1 { "Error" } p.error { (message) } p { a href="/" { "Back to the overview" } } } }
        }
    };
    (status, body).into_response()
}

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · suanli" }
        link rel="stylesheet" href="/style.css";
    }
}

/// The frame of every page: navigation for the viewer's role, who is
/// logged in, and a log-out button.
pub(crate) fn page(title: &str, viewer: &Caller, body: Markup) -> Markup {
    let role = viewer.role;
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header {
                    nav {
                        a href="/" { "Overview" }
                        @if role != Role::Node { a href="/jobs" { "Jobs" } }
                        a href="/usage" { "Usage" }
                        @if role != Role::Tenant { a href="/earnings" { "Earnings" } }
                    }
                    div.who {
                        span #viewer data-role=(role.as_str()) { (viewer.name) " · " (role.as_str()) }
                        form method="post" action="/logout" { button type="submit" { "Log out" } }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginQuery {
    failed: Option<u8>,
}

pub(crate) async fn login_form(
    axum::extract::Query(q): axum::extract::Query<LoginQuery>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head("Log in")) }
            body.login {
                main {
                    h1 { "suanli" }
                    p { "Log in with a token: an admin token shows the whole cluster, a tenant token its own jobs and bill, a node token its provider's nodes and earnings." }
                    @if q.failed.is_some() { p.error #login-error { "That token is not valid (unknown or revoked)." } }
                    form method="post" action="/login" {
                        label for="token" { "Token" }
                        input #token type="password" name="token" autocomplete="off" required;
                        button #login type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LoginForm {
    token: String,
}

/// Whether a form post comes from the dashboard's own pages: a browser
/// says where a request comes from (`Sec-Fetch-Site`, else `Origin`); a
/// post from another site's page (login or logout CSRF) is refused. A
/// client that sends neither (curl, a script) is no browser to trick.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => false,
    }
}

fn cross_site() -> Response {
    failure(
        StatusCode::FORBIDDEN,
        "a page of another site posted this form; use the dashboard's own pages",
    )
}

/// The session cookie, `HttpOnly` and `SameSite=Strict`, lasting `ttl`
/// (0 to clear it).
fn session_cookie_header(id: String, ttl: std::time::Duration) -> String {
    cookie::Cookie::build((COOKIE, id))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
        ))
        .build()
        .to_string()
}

pub(crate) async fn login(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    axum::extract::Form(form): axum::extract::Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    // A new login ends the browser's previous session, if any.
    if let Some(old) = session_cookie(&headers) {
        http.sessions.close(&old);
    }
    let token = form.token.trim();
    if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
        return Redirect::to("/login?failed=1").into_response();
    }
    let hash = token_hash(token);
    let shared = http.shared.clone();
    match blocking(move || caller_of(&shared, &hash)).await {
        Ok(Ok(Some(caller))) => {
            tracing::info!(role = caller.role.as_str(), name = %caller.name, "dashboard login");
            let Some(id) = http.sessions.open(hash) else {
                return failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many dashboard sessions are open; try again later",
                );
            };
            let ttl = http.shared.config.dashboard_session_ttl;
            (
                [(header::SET_COOKIE, session_cookie_header(id, ttl))],
                Redirect::to("/"),
            )
                .into_response()
        }
        Ok(Ok(None)) => {
            tracing::info!("dashboard login refused: unknown or revoked token");
            Redirect::to("/login?failed=1").into_response()
        }
        Ok(Err(e)) => internal(&e.to_string()),
        Err(e) => internal(&e),
    }
}

pub(crate) async fn logout(State(http): State<Arc<Http>>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return cross_site();
    }
    if let Some(id) = session_cookie(&headers) {
        http.sessions.close(&id);
    }
    let gone = session_cookie_header(String::new(), std::time::Duration::ZERO);
    ([(header::SET_COOKIE, gone)], Redirect::to("/login")).into_response()
}
