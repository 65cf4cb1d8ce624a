//! The checks every test ends with: each submitted mark became exactly one task, every task
//! succeeded on its first and only attempt, and the shared file holds every mark exactly once,
//! which proves that no script ran twice and none was skipped.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::load::{Load, count_statuses, mark, status};

/// Panics, naming what went wrong, unless `tasks` (the project's tasks once all ended) and the
/// marks file show `n` tasks run exactly once.
pub fn exactly_once(load: &Load, tasks: &[Value], n: usize) {
    let rec = load.record();
    assert!(rec.orphans.is_empty(), "tasks created by failed submissions, of unknown mark: {:?}", rec.orphans);
    let mut tasks_per_mark: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
    for (id, m) in &rec.by_task {
        tasks_per_mark.entry(*m).or_default().push(*id);
    }
    let doubled: Vec<_> = tasks_per_mark.iter().filter(|(_, ids)| ids.len() > 1).collect();
    assert!(doubled.is_empty(), "marks submitted as more than one task: {doubled:?}");
    assert_eq!(tasks_per_mark.len(), n, "marks with a task");

    let ids: Vec<i64> = tasks.iter().filter_map(|t| t["id"].as_i64()).collect();
    let strangers: Vec<&i64> = ids.iter().filter(|id| !rec.by_task.contains_key(id)).collect();
    assert!(strangers.is_empty(), "the project has tasks no submission created: {strangers:?}");
    assert_eq!(ids.len(), n, "tasks in the project ({})", count_statuses(tasks));

    let bad: Vec<&Value> = tasks.iter().filter(|t| status(t) != "succeeded").collect();
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(10).map(|t| brief(t)).collect();
        panic!("{} of {n} tasks did not succeed ({}); e.g.\n{}", bad.len(), count_statuses(tasks), shown.join("\n"));
    }
    let retried: Vec<String> = tasks.iter().filter(|t| t["attempt"].as_i64() != Some(1)).map(brief).collect();
    assert!(retried.is_empty(), "tasks of a one-attempt template ran another attempt: {retried:?}");

    let text = std::fs::read_to_string(&load.marks_file).unwrap_or_default();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for line in text.lines() {
        *seen.entry(line).or_default() += 1;
    }
    let expected: BTreeSet<String> = (0..n).map(mark).collect();
    let missing: Vec<&String> = expected.iter().filter(|m| !seen.contains_key(m.as_str())).collect();
    let twice: Vec<(&&str, &usize)> = seen.iter().filter(|(_, c)| **c > 1).collect();
    let extra: Vec<&&str> = seen.keys().filter(|l| !expected.contains(**l)).collect();
    assert!(
        missing.is_empty() && twice.is_empty() && extra.is_empty(),
        "the marks file is wrong: {} lines; scripts that never ran: {missing:?}; ran more than once: {twice:?}; \
         lines no task wrote: {extra:?}",
        text.lines().count()
    );
    assert_eq!(text.lines().count(), n, "lines in the marks file");
}

/// Every accepted submission was answered with an `X-Baton-Node` header, naming the node it was
/// sent to when it went to a node directly.
pub fn node_headers(load: &Load) {
    for s in load.served() {
        let node = s.node.as_deref().unwrap_or_else(|| panic!("{} was answered without X-Baton-Node", mark(s.index)));
        assert!(
            s.target == "haproxy" || s.target == node,
            "{} was sent to {} but answered by {node}",
            mark(s.index),
            s.target
        );
    }
}

fn brief(t: &Value) -> String {
    format!(
        "task {} {} attempt {} runner {} exit {} error {}",
        t["id"], t["status"], t["attempt"], t["runner_id"], t["exit_code"], t["error"]
    )
}
