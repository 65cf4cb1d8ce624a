//! Why a queued task waits, when the answer is not simply "for a free slot": no runner has its
//! labels, none of those is online, or all of those are paused. Computed when tasks are read, from
//! the runners table, so it is always current.

use baton_store::TaskSpec;
use baton_store::entity::{runner, task};

/// Runners as the reason needs them.
pub struct Runners {
    /// (labels, online, paused, project scope) of every registered runner.
    runners: Vec<(Vec<String>, bool, bool, Option<i64>)>,
}

impl Runners {
    /// `lease_ms`: a runner not seen for this long is offline.
    pub fn new(rows: &[runner::Model], lease_ms: i64) -> Runners {
        let now = baton_store::now_ms();
        let runners = rows
            .iter()
            .map(|r| {
                let labels: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
                (labels, r.last_seen.is_some_and(|t| t > now - lease_ms), r.paused, r.project_id)
            })
            .collect();
        Runners { runners }
    }

    /// The reason `t` waits, or `None` if it is not queued or waits only for a free slot.
    pub fn reason(&self, t: &task::Model) -> Option<String> {
        if t.status != "queued" {
            return None;
        }
        let labels = TaskSpec::from_json(&t.spec).map(|s| s.labels).unwrap_or_default();
        let fitting: Vec<_> = self
            .runners
            .iter()
            .filter(|(have, _, _, scope)| {
                scope.is_none_or(|p| p == t.project_id) && labels.iter().all(|l| have.contains(l))
            })
            .collect();
        let wanted =
            if labels.is_empty() { "any runner".to_owned() } else { format!("a runner with the labels {labels:?}") };
        if fitting.is_empty() {
            return Some(format!("no registered runner can take it: it needs {wanted}"));
        }
        if !fitting.iter().any(|(_, online, _, _)| *online) {
            return Some(format!("waiting for {wanted} to come online"));
        }
        if fitting.iter().all(|(_, online, paused, _)| !online || *paused) {
            return Some(format!("every online runner that fits is paused: it needs {wanted}"));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner_row(labels: &[&str], online: bool, paused: bool) -> runner::Model {
        runner::Model {
            id: 1,
            name: "r".into(),
            labels: serde_json::to_string(labels).unwrap(),
            capacity: 1,
            secret_hash: String::new(),
            paused,
            revoked: false,
            version: String::new(),
            node_id: None,
            last_seen: online.then(baton_store::now_ms),
            created_at: 0,
            project_id: None,
        }
    }

    fn queued(labels: &[&str]) -> task::Model {
        let spec = TaskSpec { labels: labels.iter().map(|s| s.to_string()).collect(), ..Default::default() };
        task::Model { spec: spec.to_json(), ..crate::model::queued_task() }
    }

    #[test]
    fn reasons_name_what_is_missing() {
        let rs = Runners::new(&[runner_row(&["linux"], true, false), runner_row(&["gpu"], false, false)], 10_000);
        assert!(rs.reason(&queued(&["arm"])).unwrap().contains("no registered runner"));
        assert!(rs.reason(&queued(&["gpu"])).unwrap().contains("come online"));
        assert_eq!(rs.reason(&queued(&["linux"])), None);
        let paused = Runners::new(&[runner_row(&["linux"], true, true)], 10_000);
        assert!(paused.reason(&queued(&[])).unwrap().contains("paused"));
        let none = Runners::new(&[], 10_000);
        assert!(none.reason(&queued(&[])).unwrap().contains("any runner"));
    }

    #[test]
    fn a_runner_of_another_project_does_not_count() {
        let mut scoped = runner_row(&["linux"], true, false);
        scoped.project_id = Some(99);
        let rs = Runners::new(&[scoped.clone()], 10_000);
        // `queued` builds a task of project 1.
        assert!(rs.reason(&queued(&["linux"])).unwrap().contains("no registered runner"));
        scoped.project_id = Some(1);
        assert_eq!(Runners::new(&[scoped], 10_000).reason(&queued(&["linux"])), None);
    }
}
