//! The audit log: every write through the API (every method but GET and HEAD, refused ones and
//! failed logins too) is recorded after it is answered, with who made it (user and API token),
//! the client's address (`client_addr.rs`), the node, what was done to what, and the answer's
//! status. A handler may add a short detail to its answer ([`Note`]); nothing else of a request
//! body is kept, so no secret value ever reaches the log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use baton_store::entity::audit_entry;

use crate::AppState;
use crate::auth::Caller;

/// Who made the request, as the `Caller` extractor found them.
#[derive(Debug, Clone, Default)]
pub struct Seen(Arc<Mutex<Option<Who>>>);

#[derive(Debug, Clone)]
struct Who {
    user_id: i64,
    username: String,
    token_id: Option<i64>,
}

impl Seen {
    pub fn set(&self, c: &Caller) {
        let who = Who { user_id: c.id, username: c.username.clone(), token_id: c.token.as_ref().map(|t| t.id) };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(who);
    }

    fn get(&self) -> Option<Who> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What a handler adds to the audit entry of its answer.
#[derive(Debug, Clone, Default)]
pub struct Note {
    /// A short description, never a secret value.
    pub detail: String,
    /// For a login: the user it was for (no caller is known yet).
    pub user: Option<(Option<i64>, String)>,
}

impl Note {
    pub fn detail(detail: impl Into<String>) -> Note {
        Note { detail: detail.into(), user: None }
    }
}

/// The longest detail and target kept.
const MAX_TEXT: usize = 300;

/// Records the request in the audit log once it is answered, unless it only reads.
pub async fn record(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let seen = Seen::default();
    req.extensions_mut().insert(seen.clone());
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let target = req.uri().path().to_owned();
    let client_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            crate::client_addr::client_addr(peer.ip(), req.headers(), &state.opts.trusted_proxies).to_string()
        })
        .unwrap_or_default();
    let resp = next.run(req).await;
    let note = resp.extensions().get::<Note>().cloned().unwrap_or_default();
    let who = seen.get();
    let (user_id, username) = match (&who, note.user) {
        (Some(w), _) => (Some(w.user_id), w.username.clone()),
        (None, Some((id, name))) => (id, name),
        (None, None) => (None, String::new()),
    };
    let entry = audit_entry::Model {
        id: 0,
        time: baton_store::now_ms(),
        user_id,
        username: clip(&username, 100),
        token_id: who.and_then(|w| w.token_id),
        client_ip,
        node: clip(&state.opts.node_id, 64),
        action: action(&method, &route),
        target: clip(&target, MAX_TEXT),
        detail: clip(&note.detail, MAX_TEXT),
        project_id: project_of(&target),
        status: i32::from(resp.status().as_u16()),
    };
    if let Err(e) = state.tables.append_audit(entry).await {
        // The write itself is done; the log line keeps what the audit log could not.
        tracing::error!(error = %e, %method, target, "cannot record a write in the audit log");
    }
    resp
}

/// The name of what a route does: its fixed path segments and a verb, such as
/// `templates.update` for `PATCH /api/v1/projects/{pid}/templates/{tid}`.
pub fn action(method: &Method, route: &str) -> String {
    let words: Vec<&str> =
        route.trim_start_matches("/api/v1").split('/').filter(|s| !s.is_empty() && !s.starts_with('{')).collect();
    // Inside a project, the project is the target, not part of the action.
    let words = if words.len() > 1 && words[0] == "projects" { &words[1..] } else { &words[..] };
    let last = words.last().copied().unwrap_or_default();
    let named = matches!(last, "cancel" | "drain" | "login" | "logout");
    let verb = match *method {
        _ if named => "",
        Method::POST => "create",
        Method::PUT => "set",
        Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "call",
    };
    let mut name = words.join(".");
    if !verb.is_empty() {
        name = if name.is_empty() { verb.to_owned() } else { format!("{name}.{verb}") };
    }
    clip(&name, 64)
}

/// The project a path is about: `/api/v1/projects/{pid}/…`.
fn project_of(path: &str) -> Option<i64> {
    let rest = path.strip_prefix("/api/v1/projects/")?;
    rest.split('/').next()?.parse().ok()
}

fn clip(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_the_route() {
        let cases = [
            (Method::POST, "/api/v1/auth/login", "auth.login"),
            (Method::POST, "/api/v1/projects", "projects.create"),
            (Method::PATCH, "/api/v1/projects/{pid}", "projects.update"),
            (Method::PATCH, "/api/v1/projects/{pid}/templates/{tid}", "templates.update"),
            (Method::PUT, "/api/v1/projects/{pid}/members/{uid}", "members.set"),
            (Method::POST, "/api/v1/projects/{pid}/tasks/{id}/cancel", "tasks.cancel"),
            (Method::POST, "/api/v1/cluster/nodes/{node_id}/drain", "cluster.nodes.drain"),
            (Method::DELETE, "/api/v1/runners/{id}", "runners.delete"),
            (Method::PATCH, "/api/v1/users/me", "users.me.update"),
        ];
        for (m, route, want) in cases {
            assert_eq!(action(&m, route), want, "{m} {route}");
        }
        assert_eq!(project_of("/api/v1/projects/12/templates/3"), Some(12));
        assert_eq!(project_of("/api/v1/projects"), None);
        assert_eq!(clip("héllo", 2), "h");
    }
}
