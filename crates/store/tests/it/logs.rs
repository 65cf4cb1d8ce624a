//! Task logs: fenced, idempotent `append_log`, `next_log_seq`, and paging with `Store::log_page`.

use baton_store::dispatcher::logs::Appended;
use baton_store::{LogLine, LogStream};

use crate::support::{self, assigned_task, fence, runner};

fn line(seq: i64, text: &str) -> LogLine {
    let stream = match seq % 3 {
        0 => LogStream::Stdout,
        1 => LogStream::Stderr,
        _ => LogStream::System,
    };
    LogLine { seq, time_ms: 1_000 + seq, stream, text: text.to_owned() }
}

/// Lines `first..=last` with distinct texts.
fn lines(first: i64, last: i64) -> Vec<LogLine> {
    (first..=last).map(|s| line(s, &format!("line {s}"))).collect()
}

#[tokio::test]
async fn append_is_fenced_and_idempotent() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 2).await;
    let chunk = lines(1, 3);

    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &chunk).await.unwrap(), Appended::Stored);
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &chunk).await.unwrap(), Appended::Duplicate);
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch - 1).await, &lines(4, 5)).await.unwrap(), Appended::Stale);
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch + 1).await, &lines(4, 5)).await.unwrap(), Appended::Stale);
    assert_eq!(t.append_log(fence(&t, task.id + 99, 0).await, &lines(1, 1)).await.unwrap(), Appended::Stale);

    // Neither the duplicate nor the stale chunks were stored.
    let page = db.store.log_page(task.id, 0, 100).await.unwrap();
    assert_eq!(page.lines, chunk);
    assert!(!page.more);
    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 4);
}

#[tokio::test]
async fn a_lost_attempt_can_no_longer_append() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 2).await;
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &lines(1, 2)).await.unwrap(), Appended::Stored);
    t.lose(task.id, task.epoch, "gone").await.unwrap();

    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &lines(3, 4)).await.unwrap(), Appended::Stale);
    // The next attempt continues the numbering.
    let e = t.claim(task.id, task.epoch + 1, r).await.unwrap().unwrap();
    let next = t.next_log_seq(task.id).await.unwrap();
    assert_eq!(next, 3);
    assert_eq!(t.append_log(fence(&t, task.id, e).await, &lines(next, next + 1)).await.unwrap(), Appended::Stored);
    let page = db.store.log_page(task.id, 0, 100).await.unwrap();
    assert_eq!(page.lines, lines(1, 4));
}

#[tokio::test]
async fn next_log_seq_is_one_past_the_last() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    let other = assigned_task(&t, r, 1).await;

    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 1);
    t.append_log(fence(&t, task.id, task.epoch).await, &lines(1, 10)).await.unwrap();
    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 11);
    t.append_log(fence(&t, task.id, task.epoch).await, &lines(11, 12)).await.unwrap();
    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 13);
    assert_eq!(t.next_log_seq(other.id).await.unwrap(), 1, "per task");
}

#[tokio::test]
async fn empty_chunk_stores_nothing() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &[]).await.unwrap(), Appended::Duplicate);
    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 1);
    let page = db.store.log_page(task.id, 0, 10).await.unwrap();
    assert!(page.lines.is_empty());
    assert!(!page.more);
}

#[tokio::test]
async fn log_page_pages_across_chunks_without_gaps_or_duplicates() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    // Chunks of uneven sizes: 1..=4, 5..=5, 6..=12, 13..=20.
    for (a, b) in [(1, 4), (5, 5), (6, 12), (13, 20)] {
        assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &lines(a, b)).await.unwrap(), Appended::Stored);
    }

    let first = db.store.log_page(task.id, 0, 7).await.unwrap();
    assert_eq!(first.lines, lines(1, 7));
    assert!(first.more);

    let after = first.lines.last().unwrap().seq;
    let second = db.store.log_page(task.id, after, 100).await.unwrap();
    assert_eq!(second.lines, lines(8, 20));
    assert!(!second.more);

    // Walking with a small page size visits each line exactly once.
    let (mut seen, mut cursor, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page = db.store.log_page(task.id, cursor, 3).await.unwrap();
        assert!(page.lines.len() <= 3);
        pages += 1;
        if let Some(last) = page.lines.last() {
            cursor = last.seq;
        }
        seen.extend(page.lines);
        if !page.more {
            break;
        }
        assert!(pages < 50, "paging does not end");
    }
    assert_eq!(seen, lines(1, 20));
    assert_eq!(pages, 7, "6 full pages of 3 and one of 2");

    // A page that ends exactly at the last line says there is no more.
    let exact = db.store.log_page(task.id, 10, 10).await.unwrap();
    assert_eq!(exact.lines, lines(11, 20));
    assert!(!exact.more);
    // Past the end: empty.
    let past = db.store.log_page(task.id, 20, 10).await.unwrap();
    assert!(past.lines.is_empty());
    assert!(!past.more);
    // A cursor inside a chunk starts right after it.
    let mid = db.store.log_page(task.id, 8, 2).await.unwrap();
    assert_eq!(mid.lines, lines(9, 10));
    assert!(mid.more);
}

#[tokio::test]
async fn log_page_reads_more_than_one_batch_of_chunks() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    // 40 chunks of 2 lines: more than one query's worth of chunks.
    for i in 0..40 {
        t.append_log(fence(&t, task.id, task.epoch).await, &lines(2 * i + 1, 2 * i + 2)).await.unwrap();
    }
    let all = db.store.log_page(task.id, 0, 1000).await.unwrap();
    assert_eq!(all.lines, lines(1, 80));
    assert!(!all.more);
    let part = db.store.log_page(task.id, 33, 40).await.unwrap();
    assert_eq!(part.lines, lines(34, 73));
    assert!(part.more);
}

#[tokio::test]
async fn log_pages_are_per_task() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let a = assigned_task(&t, r, 1).await;
    let b = assigned_task(&t, r, 1).await;
    t.append_log(fence(&t, a.id, a.epoch).await, &lines(1, 3)).await.unwrap();
    let b_lines = vec![line(1, "only b")];
    t.append_log(fence(&t, b.id, b.epoch).await, &b_lines).await.unwrap();
    assert_eq!(db.store.log_page(b.id, 0, 10).await.unwrap().lines, b_lines);
    assert_eq!(db.store.log_page(a.id, 0, 10).await.unwrap().lines, lines(1, 3));
}

#[tokio::test]
async fn lines_keep_stream_and_text() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    let texts = [
        "plain",
        "ünïcödé — 日本語 🚀",
        r#"quotes "double" and 'single' and \backslash\"#,
        "tab\tand\r\ncontrol \u{0007}",
        "",
        "[[1,2,\"o\",\"json-looking\"]]",
    ];
    let streams = [LogStream::Stdout, LogStream::Stderr, LogStream::System];
    let sent: Vec<LogLine> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| LogLine {
            seq: i as i64 + 1,
            time_ms: 1_700_000_000_000 + i as i64,
            stream: streams[i % 3],
            text: (*text).to_owned(),
        })
        .collect();
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &sent).await.unwrap(), Appended::Stored);
    let page = db.store.log_page(task.id, 0, 100).await.unwrap();
    assert_eq!(page.lines, sent);
}

#[tokio::test]
async fn resent_lines_in_other_chunk_bounds_are_not_paged_twice() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &lines(1, 4)).await.unwrap(), Appended::Stored);
    // After a lost acknowledgement the runner re-sends 3..=4 batched with new lines 5..=6.
    assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &lines(3, 6)).await.unwrap(), Appended::Stored);
    assert_eq!(t.next_log_seq(task.id).await.unwrap(), 7);

    assert_eq!(db.store.log_page(task.id, 0, 100).await.unwrap().lines, lines(1, 6));
    let first = db.store.log_page(task.id, 0, 3).await.unwrap();
    assert_eq!((first.lines, first.more), (lines(1, 3), true));
    let rest = db.store.log_page(task.id, 3, 3).await.unwrap();
    assert_eq!((rest.lines, rest.more), (lines(4, 6), false));
}

#[tokio::test]
async fn the_status_comes_with_the_first_page_in_every_length_of_log() {
    let db = support::db().await;
    let t = db.dispatcher();
    let r = runner(&t, "r").await;
    let task = assigned_task(&t, r, 1).await;
    let page = |after, limit| db.store.log_page_and_status(task.id, after, limit);

    let (status, empty) = page(0, 10).await.unwrap().expect("the task exists");
    assert_eq!((status.as_str(), empty.lines.len(), empty.more), ("assigned", 0, false));
    assert!(db.store.log_page_and_status(task.id + 1000, 0, 10).await.unwrap().is_none(), "no such task");

    // 40 chunks of 3 lines: more than one read of chunks holds.
    for c in 0..40 {
        let chunk = lines(c * 3 + 1, c * 3 + 3);
        assert_eq!(t.append_log(fence(&t, task.id, task.epoch).await, &chunk).await.unwrap(), Appended::Stored);
    }
    for (after, limit) in [(0, 500), (0, 120), (0, 7), (5, 60), (100, 500), (119, 10), (120, 10)] {
        let (status, got) = page(after, limit).await.unwrap().unwrap();
        let alone = db.store.log_page(task.id, after, limit).await.unwrap();
        assert_eq!(status, "assigned");
        assert_eq!((&got.lines, got.more), (&alone.lines, alone.more), "after {after}, limit {limit}");
    }
    let (_, all) = page(0, 500).await.unwrap().unwrap();
    assert_eq!((all.lines, all.more), (lines(1, 120), false));
    let (_, head) = page(0, 7).await.unwrap().unwrap();
    assert_eq!((head.lines, head.more), (lines(1, 7), true));
}

/// The first read of followers: status and whether lines are stored, many tasks in one statement
/// (followers that start together share it), each answered for its own task.
#[tokio::test]
async fn first_reads_of_followed_logs_tell_status_and_stored_lines() {
    let db = support::db().await;
    let t = db.dispatcher();
    let g = db.gateway();
    let r = runner(&t, "r").await;
    let quiet = assigned_task(&t, r, 1).await;
    let talking = assigned_task(&t, r, 1).await;
    assert_eq!(t.append_log(fence(&t, talking.id, talking.epoch).await, &lines(1, 2)).await.unwrap(), Appended::Stored);

    let asks = [quiet.id, talking.id, talking.id + 1000, quiet.id];
    let found = futures::future::join_all(asks.iter().map(|id| g.log_start(*id))).await;
    let found: Vec<_> = found.into_iter().map(|f| f.unwrap().map(|s| (s.status, s.stored))).collect();
    assert_eq!(
        found,
        [
            Some(("assigned".to_owned(), false)),
            Some(("assigned".to_owned(), true)),
            None,
            Some(("assigned".to_owned(), false)),
        ]
    );
}
