//! The firing loop, on every node: it keeps the enabled schedules in memory (reloaded every
//! second and whenever any node announces a change), sleeps until the next due time, and asks the
//! dispatcher to create each due task together with its fire row. The fire row's uniqueness makes
//! each due time fire once across the cluster, whichever nodes try; no lock or leader decides.

use std::collections::HashMap;
use std::time::Duration;

use baton_coord::{Coord, Received, topic};
use baton_proto::v1::{self as pb, Fire, FireOutcome, SubmitTaskRequest};
use baton_store::entity::schedule;
use baton_store::views::TemplateFields;
use tokio_util::sync::CancellationToken;

use crate::Tasks;
use crate::plan::{self, When};

/// Schedules are re-read at least this often, so changes reach every node within a second even
/// when no announcement arrives (coordination down).
const RELOAD: Duration = Duration::from_secs(1);

/// A schedule this node fires, with the last due time it knows handled.
struct Entry {
    row: schedule::Model,
    when: When,
    cursor: i64,
}

pub struct Firing {
    /// The schedules (written: one-shots disable themselves), and through it every read.
    pub tables: baton_store::scheduler::Tables,
    pub tasks: Tasks,
    pub coord: Coord,
    pub clock: fn() -> i64,
}

impl Firing {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut changes = self.coord.subscribe(topic::SCHEDULES).await.ok();
        let mut entries: HashMap<i64, Entry> = HashMap::new();
        let awake_since = (self.clock)();
        let mut last_reload = None::<tokio::time::Instant>;
        loop {
            if last_reload.is_none_or(|t| t.elapsed() >= RELOAD) {
                match self.reload(&mut entries).await {
                    Ok(()) => last_reload = Some(tokio::time::Instant::now()),
                    Err(e) => tracing::warn!(error = %e, "cannot read schedules; retrying"),
                }
            }
            let now = (self.clock)();
            for e in entries.values_mut() {
                self.fire_due(e, now, awake_since).await;
            }
            // Sleep until the next due time, the next reload, or an announced change.
            let next = entries.values().filter_map(|e| plan::next_due(&e.when, e.cursor)).min();
            let mut wait = RELOAD;
            if let Some(next) = next {
                wait = wait.min(Duration::from_millis((next - (self.clock)()).max(0) as u64));
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                changed = recv(&mut changes) => if changed { last_reload = None },
            }
        }
    }

    /// Brings `entries` in line with the enabled schedules in SQL. A new or changed schedule
    /// starts from its last recorded fire or its last change, whichever is later.
    async fn reload(&self, entries: &mut HashMap<i64, Entry>) -> baton_store::Result<()> {
        let rows = self.tables.enabled_schedules().await?;
        entries.retain(|id, _| rows.iter().any(|r| r.id == *id));
        for row in rows {
            if entries.get(&row.id).is_some_and(|e| e.row == row) {
                continue;
            }
            let when = match (&row.cron, row.run_at) {
                (Some(expr), _) => match crate::cron::Cron::parse(expr, &row.timezone) {
                    Ok(c) => When::Cron(c),
                    Err(e) => {
                        tracing::error!(schedule_id = row.id, error = %e, "stored schedule does not parse; not firing it");
                        continue;
                    }
                },
                (None, Some(at)) => When::Once(at),
                (None, None) => continue,
            };
            let last = self.tables.last_fire(row.id).await?;
            let cursor = match when {
                // A one-shot counts from its last fire only: created with a time already past,
                // it is late, not changed away.
                When::Once(_) => last.unwrap_or(i64::MIN),
                When::Cron(_) => last.unwrap_or(i64::MIN).max(row.updated_at),
            };
            entries.insert(row.id, Entry { row, when, cursor });
        }
        Ok(())
    }

    async fn fire_due(&self, e: &mut Entry, now: i64, awake_since: i64) {
        let latest = e.row.catch_up == "latest";
        for due in plan::due(&e.when, latest, plan::Clock { cursor: e.cursor, now, awake_since }) {
            match self.fire(&e.row, due).await {
                Ok(outcome) => {
                    tracing::debug!(schedule_id = e.row.id, due, ?outcome, "schedule fired");
                    e.cursor = due;
                }
                Err(err) => {
                    // The dispatcher or the database is away: this due time is tried again.
                    tracing::warn!(schedule_id = e.row.id, due, error = %err, "cannot fire a schedule; retrying");
                    return;
                }
            }
        }
        if let When::Once(at) = e.when {
            let missed = at <= now - plan::GRACE_MS && !latest;
            if (e.cursor >= at || missed) && e.row.enabled {
                // A one-shot is done after its fire (or its missed time): turn it off.
                match self.tables.disable_schedule(e.row.id).await {
                    Ok(()) => e.row.enabled = false,
                    Err(err) => tracing::warn!(schedule_id = e.row.id, error = %err, "cannot disable a fired one-shot"),
                }
            }
        }
    }

    /// Creates the task of one due time, unless another node did or the overlap rule skips it.
    async fn fire(&self, s: &schedule::Model, due: i64) -> Result<FireOutcome, String> {
        let spec = match self.spec(s).await {
            Ok(spec) => spec,
            Err(baton_store::Error::NotFound(what)) => {
                tracing::warn!(schedule_id = s.id, %what, "schedule's template is gone; skipping its due time");
                return Ok(FireOutcome::Skipped);
            }
            Err(e) => return Err(e.to_string()),
        };
        let fire = Fire { schedule_id: s.id, due_at_ms: due, skip_if_running: s.overlap == "skip" };
        let resp = self
            .tasks
            .clone()
            .submit_task(SubmitTaskRequest { spec: Some(spec), fire: Some(fire) })
            .await
            .map_err(|e| e.message().to_owned())?
            .into_inner();
        Ok(resp.fire())
    }

    /// The task a schedule runs: its template as it is now, like a task started by hand.
    async fn spec(&self, s: &schedule::Model) -> baton_store::Result<pb::TaskSpec> {
        let (template, project) = self.tables.template_to_run(s.project_id, s.template_id).await?;
        let f = TemplateFields::of(&template)?;
        Ok(pb::TaskSpec {
            project_id: s.project_id,
            template_id: template.id,
            script: f.script,
            shell: f.shell,
            env: f.env.into_iter().collect(),
            labels: f.labels,
            timeout_seconds: f.timeout_seconds.max(0) as u32,
            max_attempts: f.max_attempts.max(1) as u32,
            priority: f.priority,
            template_max_parallel: f.max_parallel.max(0) as u32,
            project_max_parallel: project.max_parallel.max(0) as u32,
            schedule_id: Some(s.id),
            created_by: s.created_by,
            secrets: f.secrets,
        })
    }
}

/// `true` when a change was announced (or may have been: after a lag); pends forever without a
/// subscription, and drops one that closed.
async fn recv(sub: &mut Option<baton_coord::Subscription>) -> bool {
    let Some(s) = sub else { return std::future::pending().await };
    if matches!(s.recv().await, Received::Closed) {
        *sub = None;
        return false;
    }
    true
}
