//! A node's short memory of the templates tasks are started from. Every `POST …/tasks` would
//! otherwise read its template and project (a statement of its own: on PostgreSQL nearly half of
//! a task's statements), though a busy template starts hundreds of tasks a second unchanged.
//!
//! Architecture Invariant: a task started after a change to its template or project was
//! answered, through any node, runs the changed template. Every write to templates and projects
//! passes through a gateway, which bumps the coordination version [`VERSION`] after it commits
//! and before it answers ([`changed`]); a node takes the version before it reads SQL, keeps what
//! it read under it, and uses it only while the version is still that one — one call to
//! coordination (in process on a single node, a Redis script in a cluster) instead of one SQL
//! statement. Without an answer from coordination nothing is remembered, and each memory lasts
//! at most [`FRESH`] from before its read: a writer that cannot bump retries for that long, after
//! which nothing read before its write can be in use anywhere. The same bound limits what a write
//! made around the gateway (an operator's tool on the database) can go unseen.

use std::time::{Duration, Instant};

use baton_coord::Coord;
use baton_store::entity::{project, template};

use crate::AppState;
use crate::memo::Memo;

/// The coordination version of every template and project.
pub const VERSION: &str = "templates";
/// The longest a template is remembered, from before it was read.
pub const FRESH: Duration = Duration::from_secs(1);
/// How often a writer that could not bump the version tries again.
const BUMP_RETRY: Duration = Duration::from_millis(50);
/// The most templates remembered.
const MAX_ENTRIES: usize = 1_024;

/// A template with its project, as `POST …/tasks` needs them.
pub type Found = (template::Model, project::Model);

/// Where a read from SQL started: handed from [`TemplatesSeen::start`] to
/// [`TemplatesSeen::keep`].
#[derive(Debug, Clone, Copy)]
pub struct Read {
    /// The coordination version before the read; `None` when coordination did not answer.
    version: Option<u64>,
    /// This node's own forgettings before the read.
    generation: u64,
    at: Instant,
}

#[derive(Debug)]
pub struct TemplatesSeen {
    /// Whether every node that may change templates shares this one's coordination (a cluster
    /// on Redis, or a single node); a gateway on its own without it remembers nothing.
    enabled: bool,
    /// By (project id, template id), with the version read under.
    memo: Memo<(i64, i64), (u64, Found)>,
}

impl TemplatesSeen {
    pub fn new(enabled: bool) -> TemplatesSeen {
        TemplatesSeen { enabled, memo: Memo::new(MAX_ENTRIES) }
    }

    /// Takes the version before a read; a remembered template of it when there is one.
    pub async fn start(&self, coord: &Coord, pid: i64, tid: i64) -> (Read, Option<Found>) {
        let at = Instant::now();
        let generation = self.memo.generation();
        let version = if self.enabled { coord.version(VERSION).await.ok() } else { None };
        let read = Read { version, generation, at };
        let found = version.and_then(|v| self.get(pid, tid, v));
        (read, found)
    }

    /// Template `tid` of project `pid`, if remembered under `version` and still fresh.
    fn get(&self, pid: i64, tid: i64, version: u64) -> Option<Found> {
        self.memo.get(&(pid, tid)).filter(|(v, _)| *v == version).map(|(_, found)| found)
    }

    /// Remembers `found`, read from SQL after `read`, for at most [`FRESH`] from it.
    pub fn keep(&self, found: Found, read: Read) {
        let Some(version) = read.version else { return };
        let key = (found.0.project_id, found.0.id);
        self.memo.keep(key, (version, found), read.at + FRESH, read.generation, || true);
    }

    /// Forgets every template on this node.
    fn forget(&self) {
        self.memo.forget();
    }
}

/// Called after a write to templates or projects commits, before its answer: every node stops
/// using what it read before. Waits for coordination at most [`FRESH`] (see the module's
/// invariant).
pub async fn changed(state: &AppState) {
    state.templates_seen.forget();
    let started = Instant::now();
    loop {
        match state.coord.bump(VERSION).await {
            Ok(()) => return,
            Err(e) if started.elapsed() >= FRESH => {
                tracing::warn!(error = %e, "templates changed while coordination is down; other nodes forget them within a second");
                return;
            }
            Err(_) => tokio::time::sleep(BUMP_RETRY).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(pid: i64, tid: i64, script: &str) -> Found {
        let p = project::Model {
            id: pid,
            name: format!("p{pid}"),
            description: String::new(),
            max_parallel: 0,
            created_at: 0,
            updated_at: 0,
        };
        let t = template::Model {
            id: tid,
            project_id: pid,
            name: format!("t{tid}"),
            script: script.into(),
            shell: "sh".into(),
            env: "{}".into(),
            secrets: "[]".into(),
            labels: "[]".into(),
            timeout_seconds: 0,
            max_attempts: 1,
            max_parallel: 0,
            priority: 0,
            created_at: 0,
            updated_at: 0,
        };
        (t, p)
    }

    fn read(version: Option<u64>, s: &TemplatesSeen) -> Read {
        Read { version, generation: s.memo.generation(), at: Instant::now() }
    }

    #[test]
    fn a_template_is_used_only_under_the_version_it_was_read_under() {
        let s = TemplatesSeen::new(true);
        s.keep(found(1, 2, "a"), read(Some(7), &s));
        assert_eq!(s.get(1, 2, 7).map(|f| f.0.script), Some("a".into()));
        assert!(s.get(1, 2, 8).is_none(), "bumped since: read again");
        assert!(s.get(2, 2, 7).is_none(), "another project's template id is not this one");
        s.keep(found(1, 3, "b"), read(None, &s));
        assert!(s.get(1, 3, 7).is_none(), "read without an answer from coordination: not kept");
    }

    #[test]
    fn a_memory_lasts_from_before_its_read() {
        let s = TemplatesSeen::new(true);
        let old = Read { at: Instant::now() - FRESH, ..read(Some(1), &s) };
        s.keep(found(1, 2, "a"), old);
        assert!(s.get(1, 2, 1).is_none(), "read a second ago: already too old");
        let r = read(Some(1), &s);
        s.keep(found(1, 2, "a"), r);
        assert_eq!(s.memo.until(&(1, 2)), Some(r.at + FRESH));
    }

    #[test]
    fn a_forgetting_clears_all_and_beats_a_read_made_before_it() {
        let s = TemplatesSeen::new(true);
        s.keep(found(1, 2, "a"), read(Some(1), &s));
        let before = read(Some(1), &s);
        s.forget();
        assert!(s.get(1, 2, 1).is_none());
        s.keep(found(1, 2, "old"), before);
        assert!(s.get(1, 2, 1).is_none(), "read before the forgetting: not kept");
        s.keep(found(1, 2, "new"), read(Some(1), &s));
        assert_eq!(s.get(1, 2, 1).map(|f| f.0.script), Some("new".into()));
    }

    #[test]
    fn the_memory_is_bounded() {
        let s = TemplatesSeen::new(true);
        for tid in 0..(MAX_ENTRIES as i64 + 10) {
            s.keep(found(1, tid, "a"), read(Some(1), &s));
        }
        assert!(s.memo.len() <= MAX_ENTRIES);
    }
}
