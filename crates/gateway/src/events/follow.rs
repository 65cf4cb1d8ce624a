//! Following one topic for one subscriber. Each follower subscribes to its topic's feed before it
//! reads SQL, so nothing published meanwhile is missed, keeps its own position, and reads SQL
//! whenever a notice does not continue exactly where it is, a gap is announced, or coordination
//! is down (then once a second). Positions make repeats harmless: lines at or below the cursor
//! and task versions at or below the highest sent are dropped.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use baton_coord::topic::{LogNotice, TaskNotice};
use baton_core::TaskStatus;
use baton_store::entity::{runner, task};
use bytes::Bytes;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::feed::{Feed, Subscriber};
use super::topic::Topic;
use super::{Event, Gone, Sink};
use crate::{AppState, model};

/// How often a follower looks at SQL by itself while coordination is down.
const POLL: Duration = Duration::from_secs(1);
/// How often the administrators' topics (runners, cluster) are compared with the last state.
const VIEW_POLL: Duration = Duration::from_secs(2);
/// Lines read from SQL at a time.
const PAGE: usize = 500;
/// Clocks of the nodes that stamp task changes may differ by this much: a project follower
/// catching up reads back this far (versions drop what it had).
const CLOCK_MARGIN_MS: i64 = 5_000;
/// How long a project follower's read of the runners answers why queued tasks wait: a busy
/// project's events would otherwise read every runner for each burst. A runner's online state
/// is as coarse as its heartbeat anyway; `GET` of a task always reads them afresh.
const RUNNERS_FRESH: Duration = Duration::from_secs(1);
/// The most tasks one read of a project follower names (a burst of notices is read in batches).
const NOTICE_BATCH: usize = 256;

/// Where a follower starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resume(pub Option<i64>);

/// Follows `topic` for `sink` until the subscriber is gone, `stop` fires, or (for a log) the
/// task's log has ended. While the database does not answer it waits and goes on from where it
/// was: a subscriber is never dropped silently.
pub async fn follow(state: AppState, topic: Topic, resume: Resume, sink: &dyn Sink, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        _ = run(&state, topic, resume, sink) => {}
    }
}

#[derive(Debug)]
enum Stop {
    Gone,
    Store(baton_store::Error),
}

impl From<Gone> for Stop {
    fn from(_: Gone) -> Stop {
        Stop::Gone
    }
}

impl From<baton_store::Error> for Stop {
    fn from(e: baton_store::Error) -> Stop {
        Stop::Store(e)
    }
}

async fn run(state: &AppState, topic: Topic, resume: Resume, sink: &dyn Sink) {
    let mut log = Log { state, sink, topic: topic.name(), task: 0, cursor: resume.0.unwrap_or(0).max(0) };
    let mut project = Project::new(state, sink, 0);
    let mut since = resume.0;
    loop {
        let result = match topic {
            Topic::TaskLog(id) => {
                log.task = id;
                log.run().await
            }
            Topic::Project(pid) => {
                project.pid = pid;
                project.run(since.take()).await
            }
            Topic::Runners => runners(state, sink).await,
            Topic::Cluster => cluster(state, sink).await,
        };
        match result {
            Err(Stop::Store(e)) => {
                tracing::debug!(topic = %topic.name(), error = %e, "events wait for the database");
                tokio::time::sleep(POLL).await;
                // Go on from where the follower was.
                since = Some(project.watermark - CLOCK_MARGIN_MS);
            }
            Ok(()) | Err(Stop::Gone) => return,
        }
    }
}

/// A task's log, from after `cursor` on.
struct Log<'a> {
    state: &'a AppState,
    sink: &'a dyn Sink,
    topic: String,
    task: i64,
    cursor: i64,
}

impl Log<'_> {
    async fn run(&mut self) -> Result<(), Stop> {
        let mut feed = self.state.feeds.subscribe(&self.topic);
        // A new feed announces a gap as soon as its subscription holds (most log topics are new:
        // one client follows one task): the first read waits for it instead of being made twice,
        // unless coordination is down, or the gap does not come within a poll.
        let mut read = false;
        if !feed.fresh() || !self.state.coord.healthy() {
            read = true;
            if self.catch_up_or_end().await? {
                return Ok(());
            }
        }
        let mut poll = tokio::time::interval_at(tokio::time::Instant::now() + POLL, POLL);
        loop {
            tokio::select! {
                f = feed.next() => match f {
                    Some(Feed::Notice(bytes)) => {
                        let Ok(n) = serde_json::from_slice::<LogNotice>(&bytes) else { continue };
                        if self.on_notice(n).await? {
                            return Ok(());
                        }
                    }
                    Some(Feed::Gap) => {
                        read = true;
                        if self.catch_up_or_end().await? {
                            return Ok(());
                        }
                    }
                    None => return Ok(()),
                },
                _ = poll.tick() => if !(read && self.state.coord.healthy()) {
                    read = true;
                    if self.catch_up_or_end().await? {
                        return Ok(());
                    }
                },
            }
        }
    }

    /// Delivers what a notice tells; `true` once the log has ended.
    async fn on_notice(&mut self, n: LogNotice) -> Result<bool, Stop> {
        let continues = n.lines.first().is_some_and(|l| l.seq <= self.cursor + 1);
        if continues {
            let fresh: Vec<Value> = n
                .lines
                .iter()
                .filter(|l| l.seq > self.cursor)
                .map(|l| json!({"seq": l.seq, "time": model::time(l.time), "stream": l.stream, "text": l.text}))
                .collect();
            if let Some(last) = n.lines.last().map(|l| l.seq).filter(|_| !fresh.is_empty()) {
                let event = Event::Log { lines: fresh, last, stored_at: n.stored_at };
                self.sink.deliver(&self.topic, event).await?;
                self.cursor = last;
            }
        } else if n.last.is_some_and(|last| last > self.cursor) {
            self.catch_up().await?;
        }
        if n.end {
            return match n.last {
                // The end as its dispatcher recorded it, with the last line then stored (all of
                // them: a runner reports the end only after its last chunk is acknowledged).
                // Delivered, or just read above: the log is complete without another read.
                Some(last) if last <= self.cursor => {
                    self.sink.deliver(&self.topic, Event::LogEnd).await?;
                    Ok(true)
                }
                _ => self.catch_up_or_end().await,
            };
        }
        Ok(false)
    }

    /// Delivers every stored line after the cursor.
    async fn catch_up(&mut self) -> Result<(), Stop> {
        loop {
            let _turn = self.sink.turn().await?;
            let page = self.state.tables.log_page(self.task, self.cursor, PAGE).await?;
            if !self.deliver(page).await? {
                return Ok(());
            }
        }
    }

    /// Delivers a page of lines read from SQL; `true` when more follow it.
    async fn deliver(&mut self, page: baton_store::views::LogPage) -> Result<bool, Stop> {
        let Some(last) = page.lines.last().map(|l| l.seq) else { return Ok(false) };
        let lines = page.lines.iter().map(model::log_line).collect();
        self.sink.deliver_read(&self.topic, Event::Log { lines, last, stored_at: None }).await?;
        self.cursor = last;
        Ok(page.more)
    }

    /// Catches up and, when the task has ended (every line of it is stored by then), delivers
    /// the end; `true` then.
    async fn catch_up_or_end(&mut self) -> Result<bool, Stop> {
        if self.cursor == 0 {
            // A follower's first read, asked with the others starting now: nearly always nothing
            // is stored yet, and the status alone tells whether the (empty) log is complete.
            match self.state.tables.log_start(self.task).await? {
                Some(start) if start.stored => {}
                found => {
                    let ended = found.is_none_or(|s| TaskStatus::parse(&s.status).is_some_and(|s| s.is_final()));
                    if ended {
                        self.sink.deliver_read(&self.topic, Event::LogEnd).await?;
                    }
                    return Ok(ended);
                }
            }
        }
        // The task's status and its lines in one read (one snapshot): once it is final every
        // line of it is stored, so that read completes the log. While it is not, the lines
        // stored later come with notices (the feed was subscribed before this), and so does
        // the end.
        let (ended, more) = {
            let _turn = self.sink.turn().await?;
            match self.state.tables.log_page_and_status(self.task, self.cursor, PAGE).await? {
                Some((status, page)) => {
                    (TaskStatus::parse(&status).is_some_and(|s| s.is_final()), self.deliver(page).await?)
                }
                // Deleted: nothing more will come.
                None => (true, false),
            }
        };
        if more {
            self.catch_up().await?;
        }
        if ended {
            self.sink.deliver_read(&self.topic, Event::LogEnd).await?;
        }
        Ok(ended)
    }
}

/// Whether rows came with notices (live: they must not wait for a slow client) or from a read
/// of SQL (which waits for room instead).
#[derive(Debug, Clone, Copy)]
enum Pace {
    Live,
    Read,
}

/// A project's task changes.
struct Project<'a> {
    state: &'a AppState,
    sink: &'a dyn Sink,
    topic: String,
    pid: i64,
    /// The highest version sent of each task.
    sent: HashMap<i64, i64>,
    /// The latest change time seen; catching up reads from a little before it.
    watermark: i64,
    /// The runners as last read, and when: the reasons queued tasks wait.
    runners: Option<(Instant, Vec<runner::Model>)>,
}

impl<'a> Project<'a> {
    fn new(state: &'a AppState, sink: &'a dyn Sink, pid: i64) -> Project<'a> {
        let topic = Topic::Project(pid).name();
        Project { state, sink, topic, pid, sent: HashMap::new(), watermark: baton_store::now_ms(), runners: None }
    }

    async fn run(&mut self, since: Option<i64>) -> Result<(), Stop> {
        self.topic = Topic::Project(self.pid).name();
        let mut feed = self.state.feeds.subscribe(&self.topic);
        if let Some(since) = since {
            self.catch_up(since).await?;
        }
        let mut poll = tokio::time::interval(POLL);
        loop {
            tokio::select! {
                f = feed.next() => match f {
                    Some(Feed::Notice(bytes)) => self.on_notices(&mut feed, bytes).await?,
                    Some(Feed::Gap) => self.catch_up(self.watermark - CLOCK_MARGIN_MS).await?,
                    None => return Ok(()),
                },
                _ = poll.tick() => if !self.state.coord.healthy() {
                    self.catch_up(self.watermark - CLOCK_MARGIN_MS).await?;
                },
            }
        }
    }

    /// Sends the tasks named by `first` and by every notice that has arrived behind it. Most
    /// notices carry the row their writer committed; the others are read from SQL in one query:
    /// under load notices come in bursts (a busy project changes hundreds of tasks a second, each
    /// several times), and one read per notice would cost every subscriber a statement per
    /// change. Each task is sent once, at its newest version.
    async fn on_notices(&mut self, feed: &mut Subscriber, first: Bytes) -> Result<(), Stop> {
        let mut ids = BTreeSet::new();
        let mut carried: HashMap<i64, task::Model> = HashMap::new();
        let mut gap = false;
        let mut next = Some(Feed::Notice(first));
        while let Some(f) = next {
            match f {
                Feed::Notice(bytes) => {
                    if let Ok(n) = serde_json::from_slice::<TaskNotice>(&bytes) {
                        match n.row.and_then(|v| serde_json::from_str::<task::Model>(v.get()).ok()) {
                            Some(row) if row.id == n.task && row.project_id == self.pid => {
                                if carried.get(&row.id).is_none_or(|c| c.version < row.version) {
                                    carried.insert(row.id, row);
                                }
                            }
                            _ => {
                                ids.insert(n.task);
                            }
                        }
                    }
                }
                Feed::Gap => gap = true,
            }
            next = if ids.len() + carried.len() < NOTICE_BATCH { feed.try_next() } else { None };
        }
        // A task also named without its row is read: SQL has its newest version.
        carried.retain(|id, _| !ids.contains(id));
        let ids: Vec<i64> = ids.into_iter().collect();
        let mut rows =
            if ids.is_empty() { Vec::new() } else { self.state.tables.project_tasks_by_ids(self.pid, &ids).await? };
        rows.extend(carried.into_values());
        rows.sort_by_key(|t| (t.updated_at, t.id));
        // Read or carried, these are the changes the notices announced: live, like the notices.
        self.send_all(rows, Pace::Live).await?;
        if gap {
            self.catch_up(self.watermark - CLOCK_MARGIN_MS).await?;
        }
        Ok(())
    }

    async fn catch_up(&mut self, since: i64) -> Result<(), Stop> {
        let mut after = None;
        loop {
            let _turn = self.sink.turn().await?;
            let rows = self.state.tables.tasks_changed_since(self.pid, since, after, PAGE as u64).await?;
            let full = rows.len() == PAGE;
            after = rows.last().map(|t| (t.updated_at, t.id));
            self.send_all(rows, Pace::Read).await?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Sends, in order, the rows newer than what was sent of their task.
    async fn send_all(&mut self, mut rows: Vec<task::Model>, pace: Pace) -> Result<(), Stop> {
        rows.retain(|t| self.sent.get(&t.id).is_none_or(|v| *v < t.version));
        let queued = rows.iter().any(|t| t.status == TaskStatus::Queued.as_str());
        if queued && self.runners.as_ref().is_none_or(|(at, _)| at.elapsed() > RUNNERS_FRESH) {
            self.runners = Some((Instant::now(), self.state.tables.runners().await?));
        }
        let runners = self.runners.as_ref().map_or(&[][..], |(_, r)| r.as_slice());
        let views = crate::routes::tasks_json(self.state, &rows, runners);
        for (t, task) in rows.iter().zip(views) {
            self.state.task_projects.note(t.id, t.project_id);
            self.watermark = self.watermark.max(t.updated_at);
            self.sent.insert(t.id, t.version);
            let event = Event::Task { task, version: t.version, created: t.version == 1 };
            match pace {
                Pace::Live => self.sink.deliver(&self.topic, event).await?,
                Pace::Read => self.sink.deliver_read(&self.topic, event).await?,
            }
        }
        Ok(())
    }
}

/// Runners as administrators see them, each time one changes.
async fn runners(state: &AppState, sink: &dyn Sink) -> Result<(), Stop> {
    let mut last: HashMap<i64, Value> = HashMap::new();
    let mut tick = tokio::time::interval(VIEW_POLL);
    loop {
        tick.tick().await;
        let running = state.tables.running_per_runner().await?;
        for r in state.tables.runners().await? {
            let v = crate::routes::runner_json(state, &r, running.get(&r.id).copied().unwrap_or(0));
            if last.get(&r.id) != Some(&v) {
                sink.deliver("runners", Event::Runner(v.clone())).await?;
                last.insert(r.id, v);
            }
        }
    }
}

/// Nodes as the cluster view shows them, each time one changes.
async fn cluster(state: &AppState, sink: &dyn Sink) -> Result<(), Stop> {
    let mut last: HashMap<String, Value> = HashMap::new();
    let mut tick = tokio::time::interval(VIEW_POLL);
    loop {
        tick.tick().await;
        for n in state.membership.nodes().await {
            let v = crate::routes::node_json(&n);
            // The time of the last heartbeat changes every beat; a change is anything else.
            let mut key = v.clone();
            key["last_seen"] = Value::Null;
            if last.get(&n.id) != Some(&key) {
                sink.deliver("cluster", Event::Node(v)).await?;
                last.insert(n.id.clone(), key);
            }
        }
    }
}
