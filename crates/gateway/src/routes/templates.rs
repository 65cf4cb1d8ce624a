//! Templates: a script and how to run it (API.md's template body).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use baton_core::names::{valid_env_name, valid_label};
use baton_store::gateway::templates::TemplateFields;
use serde::Deserialize;
use serde_json::Value;

use super::{ListQuery, page_limit};
use crate::AppState;
use crate::access::{self, Permission};
use crate::auth::Caller;
use crate::error::ErrorBody;
use crate::error::{Error, Result};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::model::{self, Page};
use crate::openapi::params::{ProjectPath, TemplatePath};
use crate::openapi::schemas::{NewTemplate, Template};

/// Shells a template may use.
const SHELLS: &[&str] = &["bash", "sh"];
/// A week: anything longer is a service, not a task.
const MAX_TIMEOUT: i32 = 7 * 86_400;

/// The body of both POST (name and script required: its schema is `NewTemplate`) and PATCH
/// (everything optional; absent fields stay as they are). The limits in `#[schema]` are
/// `validate`'s.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = TemplatePatch)]
pub struct Body {
    /// 1 to 100 characters.
    #[schema(min_length = 1, pattern = r"\S")]
    name: Option<String>,
    #[schema(min_length = 1, pattern = r"\S")]
    script: Option<String>,
    /// `bash` or `sh`.
    shell: Option<String>,
    /// Variable names: letters, digits and `_`, not starting with a digit; not `BATON_…`.
    env: Option<BTreeMap<String, String>>,
    /// Names of project secrets its tasks receive as variables (each must exist when a task is made).
    secrets: Option<Vec<String>>,
    /// A runner needs every one of these labels (letters, digits and `- _ . : =`, at most 64).
    labels: Option<Vec<String>>,
    /// `null` or 0 = no timeout.
    #[schema(minimum = 0, maximum = 604_800)]
    timeout_seconds: Option<i32>,
    #[schema(minimum = 1, maximum = 100)]
    max_attempts: Option<i32>,
    /// 0 = unlimited.
    #[schema(minimum = 0, maximum = 100_000)]
    max_parallel: Option<i32>,
    #[schema(minimum = -1000, maximum = 1000)]
    priority: Option<i32>,
}

impl Body {
    /// Applies the given fields over `f` and validates the result.
    fn apply(self, mut f: TemplateFields) -> Result<TemplateFields> {
        if let Some(v) = self.name {
            f.name = v.trim().to_owned();
        }
        if let Some(v) = self.script {
            f.script = v;
        }
        if let Some(v) = self.shell {
            f.shell = v;
        }
        if let Some(v) = self.env {
            f.env = v;
        }
        if let Some(v) = self.secrets {
            f.secrets = v;
        }
        if let Some(v) = self.labels {
            f.labels = v;
        }
        if let Some(v) = self.timeout_seconds {
            f.timeout_seconds = v;
        }
        if let Some(v) = self.max_attempts {
            f.max_attempts = v;
        }
        if let Some(v) = self.max_parallel {
            f.max_parallel = v;
        }
        if let Some(v) = self.priority {
            f.priority = v;
        }
        validate(&f)?;
        Ok(f)
    }
}

fn validate(f: &TemplateFields) -> Result<()> {
    if f.name.is_empty() || f.name.chars().count() > 100 {
        return Err(Error::field("name", "must be 1 to 100 characters"));
    }
    if f.script.trim().is_empty() {
        return Err(Error::field("script", "is empty"));
    }
    if !SHELLS.contains(&f.shell.as_str()) {
        return Err(Error::field("shell", format!("{:?} is not supported; use one of {SHELLS:?}", f.shell)));
    }
    if let Some(k) = f.env.keys().find(|k| !valid_env_name(k)) {
        return Err(Error::field(
            &format!("env.{k}"),
            "is not a valid variable name (letters, digits, _; not starting with a digit)",
        ));
    }
    if let Some(k) = f.env.keys().find(|k| k.starts_with("BATON_")) {
        return Err(Error::field(&format!("env.{k}"), "names starting with BATON_ are reserved"));
    }
    if let Some(s) = f.secrets.iter().find(|s| !valid_env_name(s)) {
        return Err(Error::field("secrets", format!("{s:?} is not a valid secret name")));
    }
    if let Some(l) = f.labels.iter().find(|l| !valid_label(l)) {
        return Err(Error::field(
            "labels",
            format!("{l:?} is not a valid label (letters, digits and - _ . : =, at most 64)"),
        ));
    }
    if !(0..=MAX_TIMEOUT).contains(&f.timeout_seconds) {
        return Err(Error::field("timeout_seconds", format!("must be between 1 and {MAX_TIMEOUT}, or 0 for none")));
    }
    if !(1..=100).contains(&f.max_attempts) {
        return Err(Error::field("max_attempts", "must be between 1 and 100"));
    }
    if !(0..=100_000).contains(&f.max_parallel) {
        return Err(Error::field("max_parallel", "must be between 0 (unlimited) and 100000"));
    }
    if !(-1000..=1000).contains(&f.priority) {
        return Err(Error::field("priority", "must be between -1000 and 1000"));
    }
    Ok(())
}

fn render(t: &baton_store::entity::template::Model) -> Result<Value> {
    Ok(model::template(t, &TemplateFields::of(t)?))
}

/// A project's templates.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/templates",
    operation_id = "list_templates",
    tag = "templates",
    params(ProjectPath, ListQuery),
    responses((status = 200, description = "a page of the project's templates", body = Page<Template>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<Value>>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    let limit = page_limit(q.limit)?;
    let rows = state.tables.templates(pid, q.before, limit as u64 + 1).await?;
    let page = Page::of(rows, limit, |t| t.id, |t| t);
    let items = page.items.iter().map(render).collect::<Result<Vec<_>>>()?;
    Ok(Json(Page { items, next: page.next }))
}

/// A new template (managers).
#[utoipa::path(
    post,
    path = "/api/v1/projects/{pid}/templates",
    operation_id = "create_template",
    tag = "templates",
    params(ProjectPath),
    request_body = NewTemplate,
    responses(
        (status = 201, description = "the new template", body = Template),
        (status = 409, description = "the project has a template of this name", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(pid): ApiPath<i64>,
    ApiJson(body): ApiJson<Body>,
) -> Result<(StatusCode, Json<Value>)> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    if body.name.is_none() {
        return Err(Error::field("name", "is required"));
    }
    if body.script.is_none() {
        return Err(Error::field("script", "is required"));
    }
    let defaults = TemplateFields { shell: "bash".into(), max_attempts: 1, ..Default::default() };
    let fields = body.apply(defaults)?;
    let t = state.tables.create_template(pid, fields).await?;
    Ok((StatusCode::CREATED, Json(render(&t)?)))
}

/// A template.
#[utoipa::path(
    get,
    path = "/api/v1/projects/{pid}/templates/{tid}",
    operation_id = "get_template",
    tag = "templates",
    params(TemplatePath),
    responses((status = 200, description = "the template", body = Template))
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, tid)): ApiPath<(i64, i64)>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Read).await?;
    Ok(Json(render(&state.tables.template(pid, tid).await?)?))
}

/// Changes a template (managers); tasks already made keep what they were made with.
#[utoipa::path(
    patch,
    path = "/api/v1/projects/{pid}/templates/{tid}",
    operation_id = "update_template",
    tag = "templates",
    params(TemplatePath),
    request_body = Body,
    responses(
        (status = 200, description = "the changed template", body = Template),
        (status = 409, description = "the project has a template of this name", body = ErrorBody),
    )
)]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, tid)): ApiPath<(i64, i64)>,
    ApiJson(body): ApiJson<Body>,
) -> Result<Json<Value>> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    let current = state.tables.template(pid, tid).await?;
    let fields = body.apply(TemplateFields::of(&current)?)?;
    let updated = state.tables.update_template(current, fields).await;
    // After the write: a task started from now on reads the new template.
    crate::templates_seen::changed(&state).await;
    Ok(Json(render(&updated?)?))
}

/// Deletes a template (managers).
#[utoipa::path(
    delete,
    path = "/api/v1/projects/{pid}/templates/{tid}",
    operation_id = "delete_template",
    tag = "templates",
    params(TemplatePath),
    responses(
        (status = 204, description = "deleted"),
        (status = 409, description = "the template still has tasks or schedules", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((pid, tid)): ApiPath<(i64, i64)>,
) -> Result<StatusCode> {
    access::project(&state, &caller, pid, Permission::Change).await?;
    let deleted = state.tables.delete_template(pid, tid).await;
    crate::templates_seen::changed(&state).await;
    deleted?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> TemplateFields {
        TemplateFields {
            name: "t".into(),
            script: "true".into(),
            shell: "bash".into(),
            max_attempts: 1,
            ..Default::default()
        }
    }

    #[test]
    fn validation_names_the_field() {
        let cases: Vec<(Body, &str)> = vec![
            (Body { shell: Some("zsh".into()), ..Default::default() }, "`shell`"),
            (Body { env: Some([("1X".to_string(), "v".to_string())].into()), ..Default::default() }, "`env.1X`"),
            (Body { env: Some([("BATON_X".to_string(), "v".to_string())].into()), ..Default::default() }, "reserved"),
            (Body { labels: Some(vec!["a b".into()]), ..Default::default() }, "`labels`"),
            (Body { timeout_seconds: Some(-1), ..Default::default() }, "`timeout_seconds`"),
            (Body { max_attempts: Some(0), ..Default::default() }, "`max_attempts`"),
            (Body { priority: Some(5000), ..Default::default() }, "`priority`"),
            (Body { script: Some("  ".into()), ..Default::default() }, "`script`"),
        ];
        for (body, want) in cases {
            let err = body.apply(fields()).unwrap_err().message;
            assert!(err.contains(want), "{err} should mention {want}");
        }
        assert!(Body::default().apply(fields()).is_ok());
    }
}
