//! Reports stored together answer exactly as each would alone — fenced the same way, repeats
//! included — and the rows they hand back (for change notices) are the rows SQL holds.

use baton_core::TaskStatus;
use baton_store::dispatcher::Tables;
use baton_store::dispatcher::batch::Start;
use baton_store::dispatcher::reports::{Fence, Finish};
use baton_store::entity::task;
use baton_store::{StatementKind, now_ms};

use crate::support::{self, assigned_task, new_task, runner};

fn fence(t: &task::Model, runner_id: i64) -> Fence {
    Fence { task_id: t.id, epoch: t.epoch, runner_id }
}

fn end(fence: Fence, status: TaskStatus, exit_code: Option<i32>, error: Option<&str>) -> Finish {
    Finish { fence, status, exit_code, error: error.map(str::to_owned), node_id: Some("node-a".into()) }
}

/// Every row an answer carries is the task as SQL has it now.
async fn rows_are_sqls(t: &Tables, rows: impl IntoIterator<Item = task::Model>) {
    for row in rows {
        assert_eq!(t.task(row.id).await.unwrap(), row, "the row handed back is the stored row");
    }
}

#[tokio::test]
async fn started_reports_stored_together_are_fenced_one_by_one() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (owner, intruder) = (runner(&t, "owner").await, runner(&t, "intruder").await);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(assigned_task(&t, owner, 2).await);
    }
    let at = now_ms() - 5_000;
    let starts = [
        Start { fence: fence(&tasks[0], owner), at },
        Start { fence: fence(&tasks[1], owner), at: at + 1 },
        Start { fence: fence(&tasks[2], intruder), at },
        Start { fence: Fence { epoch: tasks[3].epoch - 1, ..fence(&tasks[3], owner) }, at },
        Start { fence: fence(&tasks[4], owner), at: at + 4 },
        // The same report again (a re-send): a harmless repeat.
        Start { fence: fence(&tasks[0], owner), at },
    ];
    let updates = support::statements(&db.store, StatementKind::Update);
    let answers = t.report_started_many(&starts).await.unwrap();
    let accepted: Vec<bool> = answers.iter().map(Option::is_some).collect();
    assert_eq!(accepted, [true, true, false, false, true, true]);
    // The three that hold in one UPDATE; the other three one by one.
    assert_eq!(support::statements(&db.store, StatementKind::Update) - updates, 4);
    for (i, started_at) in [(0, at), (1, at + 1), (4, at + 4)] {
        let row = t.task(tasks[i].id).await.unwrap();
        assert_eq!((row.status.as_str(), row.started_at), ("running", Some(started_at)), "task {i}");
        assert_eq!(row.version, tasks[i].version + 1, "changed once");
    }
    for i in [2, 3] {
        assert_eq!(t.task(tasks[i].id).await.unwrap(), tasks[i], "a refused report changed nothing");
    }
    rows_are_sqls(&t, answers.into_iter().flatten().filter_map(|a| a.row)).await;
}

#[tokio::test]
async fn a_stale_start_beside_the_current_one_of_its_task_is_refused() {
    let db = support::db().await;
    let t = db.dispatcher();
    let owner = runner(&t, "owner").await;
    let task = assigned_task(&t, owner, 2).await;
    let current = fence(&task, owner);
    let stale = Fence { epoch: task.epoch - 1, ..current };
    let at = now_ms();
    let answers = t.report_started_many(&[Start { fence: stale, at }, Start { fence: current, at }]).await.unwrap();
    let accepted: Vec<bool> = answers.iter().map(Option::is_some).collect();
    assert_eq!(accepted, [false, true], "the row the batch left goes to the report that holds it");
    rows_are_sqls(&t, answers.into_iter().flatten().filter_map(|a| a.row)).await;
}

#[tokio::test]
async fn ends_stored_together_are_fenced_one_by_one_and_leave_their_history() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (owner, intruder) = (runner(&t, "owner").await, runner(&t, "intruder").await);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        tasks.push(assigned_task(&t, owner, 2).await);
    }
    assert!(t.mark_running(fence(&tasks[0], owner), now_ms()).await.unwrap());
    // Task 5 ended before: its end below is a repeat.
    assert!(t.finish(end(fence(&tasks[5], owner), TaskStatus::Succeeded, Some(0), None)).await.unwrap());
    let before5 = t.task(tasks[5].id).await.unwrap();
    let ends = [
        end(fence(&tasks[0], owner), TaskStatus::Succeeded, Some(0), None),
        end(fence(&tasks[1], owner), TaskStatus::Failed, Some(2), Some("boom")),
        end(fence(&tasks[2], intruder), TaskStatus::Succeeded, Some(0), None),
        end(fence(&tasks[3], owner), TaskStatus::Succeeded, Some(0), None),
        end(fence(&tasks[4], owner), TaskStatus::TimedOut, None, Some("timed out")),
        end(fence(&tasks[5], owner), TaskStatus::Succeeded, Some(0), None),
    ];
    let answers = t.report_finished_many(&ends).await.unwrap();
    let accepted: Vec<bool> = answers.iter().map(Option::is_some).collect();
    assert_eq!(accepted, [true, true, false, true, true, true]);
    assert!(answers[5].as_ref().unwrap().row.is_none(), "a repeat changes nothing, so it has no new row");
    assert_eq!(t.task(tasks[5].id).await.unwrap(), before5);
    assert_eq!(t.task(tasks[2].id).await.unwrap(), tasks[2], "the intruder's end changed nothing");
    for (i, status, exit, error) in [
        (0, "succeeded", Some(0), None),
        (1, "failed", Some(2), Some("boom")),
        (3, "succeeded", Some(0), None),
        (4, "timed_out", None, Some("timed out")),
    ] {
        let row = t.task(tasks[i].id).await.unwrap();
        assert_eq!((row.status.as_str(), row.exit_code, row.error.as_deref()), (status, exit, error), "task {i}");
        let history = db.store.task_attempts(tasks[i].id, None, 10).await.unwrap();
        assert_eq!(history.len(), 1, "task {i} has one attempt in its history");
        let a = &history[0].attempt;
        assert_eq!((a.status.as_str(), a.exit_code, a.node_id.as_deref()), (status, exit, Some("node-a")));
    }
    assert!(db.store.task_attempts(tasks[2].id, None, 10).await.unwrap().is_empty());
    rows_are_sqls(&t, answers.into_iter().flatten().filter_map(|a| a.row)).await;
}

#[tokio::test]
async fn a_claim_hands_back_the_stored_row_and_misses_a_row_changed_since_it_was_read() {
    let db = support::db().await;
    let t = db.dispatcher();
    let owner = runner(&t, "owner").await;
    let read = t.create_task(new_task(1, 1, 0, 2)).await.unwrap();
    let row = t.claim_row(&read, owner).await.unwrap().expect("claimed");
    rows_are_sqls(&t, [row.clone()]).await;
    assert_eq!((row.status.as_str(), row.epoch, row.runner_id), ("assigned", read.epoch + 1, Some(owner)));

    // A row read before its last change (same status and epoch, older version) is not claimed.
    let other = t.create_task(new_task(1, 1, 0, 2)).await.unwrap();
    let stale = task::Model { version: other.version - 1, ..other.clone() };
    assert!(t.claim_row(&stale, owner).await.unwrap().is_none(), "a changed row is left for the next pass");
    assert_eq!(t.task(other.id).await.unwrap(), other);

    // The single reports hand back the stored row too.
    let started = t.report_started(fence(&row, owner), now_ms()).await.unwrap().unwrap();
    rows_are_sqls(&t, started.row).await;
    let ended =
        t.report_finished(end(fence(&row, owner), TaskStatus::Succeeded, Some(0), None)).await.unwrap().unwrap();
    rows_are_sqls(&t, ended.row).await;
}

#[tokio::test]
async fn claims_made_together_are_fenced_one_by_one() {
    let db = support::db().await;
    let t = db.dispatcher();
    let (a, b) = (runner(&t, "a").await, runner(&t, "b").await);
    let mut read = Vec::new();
    for _ in 0..5 {
        read.push(t.create_task(new_task(1, 1, 0, 2)).await.unwrap());
    }
    // Another node claimed task 1 first; task 3 changed since it was read (version behind).
    t.claim_row(&read[1], b).await.unwrap().expect("the other node's claim");
    let stale = task::Model { version: read[3].version - 1, ..read[3].clone() };
    // Task 4 named twice (for two runners): the first claim takes it.
    let claims = [(&read[0], a), (&read[1], a), (&read[2], b), (&stale, a), (&read[4], a), (&read[4], b)];
    let updates = support::statements(&db.store, StatementKind::Update);
    let rows = t.claim_rows(&claims).await.unwrap();
    assert_eq!(support::statements(&db.store, StatementKind::Update) - updates, 1, "one UPDATE claims them all");
    let got: Vec<Option<i64>> = rows.iter().map(|r| r.as_ref().and_then(|r| r.runner_id)).collect();
    assert_eq!(got, [Some(a), None, Some(b), None, Some(a), None], "each claim answered as it would be alone");
    for (row, (before, _)) in rows.iter().zip(&claims) {
        if let Some(row) = row {
            assert_eq!((row.status.as_str(), row.epoch), ("assigned", before.epoch + 1));
        }
    }
    rows_are_sqls(&t, rows.into_iter().flatten()).await;
    let lost = t.task(read[1].id).await.unwrap();
    assert_eq!((lost.runner_id, lost.epoch), (Some(b), 1), "a lost claim changes nothing");
    assert_eq!(t.task(read[3].id).await.unwrap(), read[3], "a changed row is left for the next pass");
    // Claiming the same rows again finds every one taken.
    assert!(t.claim_rows(&claims).await.unwrap().iter().all(Option::is_none));
}

#[tokio::test]
async fn tasks_created_at_once_each_get_their_own_stored_row() {
    let db = support::db().await;
    let t = db.dispatcher();
    let inserts = || support::statements(&db.store, StatementKind::Insert);
    let before = inserts();
    // Some alike, some not: alike requests may share an INSERT but never a task.
    let made = futures::future::join_all((0..24).map(|i| {
        let t = t.clone();
        async move {
            let new = new_task(1 + i % 3, 1, i32::try_from(i % 2).unwrap(), 1);
            let row = t.create_task(new.clone()).await.unwrap();
            (new, row)
        }
    }))
    .await;
    let mut ids: Vec<i64> = made.iter().map(|(_, row)| row.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 24, "every request got a task of its own");
    for (new, row) in &made {
        assert_eq!((row.project_id, row.priority, row.status.as_str()), (new.project_id, new.priority, "queued"));
        assert_eq!(row.spec, new.spec.to_json());
    }
    // Made together, they were inserted together: everywhere but on MySQL proper, which cannot
    // hand the rows back from one INSERT (MariaDB from 10.5 can, and is what the tests run on).
    assert_eq!(t.insert_returning(), !is_mysql_proper(&db).await);
    if t.insert_returning() {
        assert!(inserts() - before < 24, "{} INSERTs for 24 tasks made at once", inserts() - before);
    }
    rows_are_sqls(&t, made.into_iter().map(|(_, row)| row)).await;
}

/// Whether the database is MySQL rather than MariaDB.
async fn is_mysql_proper(db: &support::TestDb) -> bool {
    use sea_orm::ConnectionTrait;
    if db.store.dialect() != "mysql" {
        return false;
    }
    let conn = db.store.conn();
    let stmt = sea_orm::Statement::from_string(conn.get_database_backend(), "SELECT VERSION()");
    let version: String = conn.query_one_raw(stmt).await.unwrap().unwrap().try_get_by_index(0).unwrap();
    !version.contains("MariaDB")
}
