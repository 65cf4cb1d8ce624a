//! Runners: identity (digest-only secrets) and leases (`last_seen`).

use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set};

use super::Tables;
use crate::entity::{registration_token, runner};
use crate::error::found;
use crate::{Error, Result, end_tx, now_ms};

/// The most runners one lease renewal names: far below every dialect's limit on parameters.
const SEEN_CHUNK: usize = 1_000;

/// A runner to create or re-key.
pub struct RunnerSpec<'a> {
    pub name: &'a str,
    pub labels: &'a [String],
    pub capacity: i32,
    pub secret_hash: &'a str,
}

/// What a runner says about itself when it connects. Its labels are not among it: they were
/// granted at registration, and a hello may only narrow them for the stream it opens.
pub struct Hello<'a> {
    pub node_id: &'a str,
    pub version: &'a str,
    pub capacity: i32,
}

impl Tables {
    /// Creates the runner named `spec.name`, or gives the existing one a new secret, labels and
    /// capacity (a node's own runner is re-keyed at every start).
    pub async fn ensure_runner(&self, spec: RunnerSpec<'_>) -> Result<runner::Model> {
        let labels = serde_json::to_string(spec.labels).unwrap_or_default();
        let existing = runner::Entity::find().filter(runner::Column::Name.eq(spec.name)).one(self.conn()).await?;
        let row = match existing {
            Some(r) => {
                let mut row: runner::ActiveModel = r.into();
                row.labels = Set(labels);
                row.capacity = Set(spec.capacity);
                row.secret_hash = Set(spec.secret_hash.to_owned());
                row.revoked = Set(false);
                row.update(self.conn()).await?
            }
            None => new_runner(&spec, labels).insert(self.conn()).await?,
        };
        Ok(row)
    }

    pub async fn runner(&self, id: i64) -> Result<runner::Model> {
        runner::Entity::find_by_id(id).one(self.conn()).await?.ok_or_else(|| Error::NotFound(format!("runner {id}")))
    }

    /// Records what a connecting runner said about itself.
    pub async fn runner_connected(&self, id: i64, hello: Hello<'_>) -> Result<()> {
        runner::Entity::update_many()
            .col_expr(runner::Column::NodeId, Expr::value(hello.node_id))
            .col_expr(runner::Column::Version, Expr::value(hello.version))
            .col_expr(runner::Column::Capacity, Expr::value(hello.capacity))
            .col_expr(runner::Column::LastSeen, Expr::value(now_ms()))
            .filter(runner::Column::Id.eq(id))
            .exec(self.conn())
            .await?;
        Ok(())
    }

    /// Which of `ids` last said hello to node `node_id`, i.e. have their current stream there.
    pub async fn runners_on_node(&self, ids: &[i64], node_id: &str) -> Result<Vec<i64>> {
        Ok(runner::Entity::find()
            .select_only()
            .column(runner::Column::Id)
            .filter(runner::Column::Id.is_in(ids.iter().copied()))
            .filter(runner::Column::NodeId.eq(node_id))
            .into_tuple()
            .all(self.conn())
            .await?)
    }

    /// Renews the leases of runners heard from: `(runner id, when it was last heard, ms)`, one
    /// statement for all of them (a node's heartbeats are written together,
    /// `dispatcher/src/leases.rs`). A lease never goes back: a time older than the one stored
    /// (written by another node the runner moved to, or by its hello) leaves it as it is.
    pub async fn runners_seen(&self, seen: &[(i64, i64)]) -> Result<()> {
        use sea_orm::sea_query::ExprTrait as _;
        for chunk in seen.chunks(SEEN_CHUNK) {
            let mut at = CaseStatement::new();
            for (id, t) in chunk {
                let older = runner::Column::LastSeen.is_null().or(runner::Column::LastSeen.lt(*t));
                at = at.case(runner::Column::Id.eq(*id).and(older), *t);
            }
            let at = at.finally(Expr::col(runner::Column::LastSeen));
            runner::Entity::update_many()
                .col_expr(runner::Column::LastSeen, at.into())
                .filter(runner::Column::Id.is_in(chunk.iter().map(|(id, _)| *id)))
                .exec(self.conn())
                .await?;
        }
        Ok(())
    }
}

/// A registration token to store.
pub struct NewRegistrationToken<'a> {
    pub token_hash: &'a str,
    pub labels: &'a [String],
    pub project_id: Option<i64>,
    pub expires_at: i64,
    /// How many runners it may create; 0 = any number until it expires.
    pub max_uses: i32,
}

/// What [`Tables::register_runner`] did.
#[derive(Debug)]
pub enum Registration {
    /// The runner was created with these labels.
    Registered { runner: Box<runner::Model>, labels: Vec<String> },
    /// No such token, or it expired or was used up.
    UnknownToken,
    /// The runner asked for a label the token does not grant.
    LabelNotGranted { label: String, granted: Vec<String> },
}

/// The labels a runner registered with a token gets: a token minted with labels grants those
/// and no others (the runner may ask for fewer); one minted without leaves the choice to the
/// runner. Labels decide which tasks — and so which secrets — reach a runner, so a token holder
/// must not be able to pick labels the administrator did not grant.
pub fn granted_labels(token: &[String], asked: &[String]) -> std::result::Result<Vec<String>, String> {
    if token.is_empty() {
        return Ok(asked.to_vec());
    }
    if asked.is_empty() {
        return Ok(token.to_vec());
    }
    match asked.iter().find(|l| !token.contains(l)) {
        Some(bad) => Err(bad.clone()),
        None => Ok(asked.to_vec()),
    }
}

impl Tables {
    pub async fn create_registration_token(&self, t: NewRegistrationToken<'_>) -> Result<registration_token::Model> {
        let row = registration_token::ActiveModel {
            token_hash: Set(t.token_hash.to_owned()),
            labels: Set(serde_json::to_string(t.labels).unwrap_or_default()),
            project_id: Set(t.project_id),
            created_at: Set(now_ms()),
            expires_at: Set(t.expires_at),
            max_uses: Set(t.max_uses.max(0)),
            uses: Set(0),
            ..Default::default()
        };
        Ok(row.insert(self.conn()).await?)
    }

    /// Creates the token, or when one with the same digest exists gives it these labels, project,
    /// expiry and use limit (keeping its count of uses): for a token an operator keeps in a
    /// secret store and re-applies on every deployment.
    pub async fn ensure_registration_token(&self, t: NewRegistrationToken<'_>) -> Result<registration_token::Model> {
        let existing = registration_token::Entity::find()
            .filter(registration_token::Column::TokenHash.eq(t.token_hash))
            .one(self.conn())
            .await?;
        let Some(row) = existing else { return self.create_registration_token(t).await };
        let mut row: registration_token::ActiveModel = row.into();
        row.labels = Set(serde_json::to_string(t.labels).unwrap_or_default());
        row.project_id = Set(t.project_id);
        row.expires_at = Set(t.expires_at);
        row.max_uses = Set(t.max_uses.max(0));
        Ok(row.update(self.conn()).await?)
    }

    /// Creates the runner `spec.name` if `token_hash` belongs to an unexpired registration token
    /// with a use left, and counts the use — in one transaction, so concurrent registrations
    /// cannot use a token more often than allowed, and a refused runner (its name is taken)
    /// does not use it up. The runner's labels are [`granted_labels`]; its project is the
    /// token's.
    pub async fn register_runner(&self, token_hash: &str, spec: RunnerSpec<'_>) -> Result<Registration> {
        let tx = self.write_tx().await?;
        let result = register_in(&tx, token_hash, spec).await;
        end_tx(tx, result).await
    }

    pub async fn set_runner_paused(&self, id: i64, paused: bool) -> Result<()> {
        let res = runner::Entity::update_many()
            .col_expr(runner::Column::Paused, Expr::value(paused))
            .filter(runner::Column::Id.eq(id))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("runner {id}"))?;
        Ok(())
    }

    /// Revokes a runner: its secret is forgotten, so it can never authenticate again.
    pub async fn revoke_runner(&self, id: i64) -> Result<()> {
        let res = runner::Entity::update_many()
            .col_expr(runner::Column::Revoked, Expr::value(true))
            .col_expr(runner::Column::SecretHash, Expr::value("revoked"))
            .filter(runner::Column::Id.eq(id))
            .exec(self.conn())
            .await?;
        found(res.rows_affected, || format!("runner {id}"))?;
        Ok(())
    }
}

async fn register_in(tx: &DatabaseTransaction, token_hash: &str, spec: RunnerSpec<'_>) -> Result<Registration> {
    let token = registration_token::Entity::find()
        .filter(registration_token::Column::TokenHash.eq(token_hash))
        .filter(registration_token::Column::ExpiresAt.gt(now_ms()))
        .lock_exclusive()
        .one(tx)
        .await?;
    let Some(token) = token.filter(|t| t.max_uses == 0 || t.uses < t.max_uses) else {
        return Ok(Registration::UnknownToken);
    };
    let granted: Vec<String> = serde_json::from_str(&token.labels).unwrap_or_default();
    let labels = match granted_labels(&granted, spec.labels) {
        Ok(l) => l,
        Err(label) => return Ok(Registration::LabelNotGranted { label, granted }),
    };
    // Compare-and-set on the count: the row lock already serializes registrations on PostgreSQL
    // and MySQL, and SQLite's write transaction does the same.
    let used = registration_token::Entity::update_many()
        .col_expr(registration_token::Column::Uses, Expr::value(token.uses + 1))
        .filter(registration_token::Column::Id.eq(token.id))
        .filter(registration_token::Column::Uses.eq(token.uses))
        .exec(tx)
        .await?;
    if used.rows_affected != 1 {
        return Ok(Registration::UnknownToken);
    }
    let mut row = new_runner(&spec, serde_json::to_string(&labels).unwrap_or_default());
    row.project_id = Set(token.project_id);
    let runner = row.insert(tx).await.map_err(|e| match Error::from(e) {
        Error::Conflict(_) => {
            Error::Conflict(format!("a runner named {:?} already exists; pick another name", spec.name))
        }
        other => other,
    })?;
    Ok(Registration::Registered { runner: Box::new(runner), labels })
}

/// A new, active runner row; `labels` is JSON.
fn new_runner(spec: &RunnerSpec<'_>, labels: String) -> runner::ActiveModel {
    runner::ActiveModel {
        name: Set(spec.name.to_owned()),
        labels: Set(labels),
        capacity: Set(spec.capacity),
        secret_hash: Set(spec.secret_hash.to_owned()),
        paused: Set(false),
        revoked: Set(false),
        version: Set(String::new()),
        created_at: Set(now_ms()),
        ..Default::default()
    }
}
