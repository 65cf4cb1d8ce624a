//! How many SQL statements this process has sent, by kind. `baton bench` divides the growth of
//! `baton_sql_statements_total` by the tasks it ran: the statements a task costs are the first
//! thing to look at when the server's CPU per task grows, and they show a folded read or a
//! batched write at once, where timings need an idle machine.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds counted apart: what a statement does, not which table (that label would be as long
/// as the schema, and the kinds already tell a read from a write and a transaction's cost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Select,
    Insert,
    Update,
    Delete,
    /// A transaction begun (its BEGIN and its COMMIT or ROLLBACK: the store ends every transaction
    /// it begins explicitly).
    Transaction,
    Other,
}

impl StatementKind {
    pub const ALL: [StatementKind; 6] = [
        StatementKind::Select,
        StatementKind::Insert,
        StatementKind::Update,
        StatementKind::Delete,
        StatementKind::Transaction,
        StatementKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatementKind::Select => "select",
            StatementKind::Insert => "insert",
            StatementKind::Update => "update",
            StatementKind::Delete => "delete",
            StatementKind::Transaction => "transaction",
            StatementKind::Other => "other",
        }
    }

    /// The kind of a statement, from its first keyword (`WITH …` counts as a read: the store
    /// writes with plain INSERT/UPDATE/DELETE).
    pub fn of(sql: &str) -> StatementKind {
        let word = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
        match word.to_ascii_lowercase().as_str() {
            "select" | "with" => StatementKind::Select,
            "insert" => StatementKind::Insert,
            "update" => StatementKind::Update,
            "delete" => StatementKind::Delete,
            "begin" | "start" => StatementKind::Transaction,
            _ => StatementKind::Other,
        }
    }
}

/// Counters shared by every connection of one store.
#[derive(Debug, Default)]
pub struct StatementCounts([AtomicU64; 6]);

impl StatementCounts {
    pub(crate) fn add(&self, kind: StatementKind) {
        // Relaxed: a counter read at scrape time needs no ordering with anything else.
        self.0[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every kind with its count so far.
    pub fn snapshot(&self) -> impl Iterator<Item = (StatementKind, u64)> + '_ {
        StatementKind::ALL.into_iter().map(|k| (k, self.0[k as usize].load(Ordering::Relaxed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_told_apart_by_their_first_keyword() {
        for (sql, kind) in [
            ("SELECT 1", StatementKind::Select),
            ("  select * from tasks", StatementKind::Select),
            ("WITH q AS (SELECT 1) SELECT * FROM q", StatementKind::Select),
            ("INSERT INTO \"tasks\" …", StatementKind::Insert),
            ("UPDATE `tasks` SET …", StatementKind::Update),
            ("DELETE FROM sessions", StatementKind::Delete),
            ("BEGIN IMMEDIATE", StatementKind::Transaction),
            ("START TRANSACTION", StatementKind::Transaction),
            ("COMMIT", StatementKind::Other),
            ("PRAGMA foreign_keys = ON", StatementKind::Other),
            ("", StatementKind::Other),
        ] {
            assert_eq!(StatementKind::of(sql), kind, "{sql}");
        }
    }

    #[test]
    fn counts_grow_per_kind() {
        let c = StatementCounts::default();
        c.add(StatementKind::Update);
        c.add(StatementKind::Update);
        c.add(StatementKind::Transaction);
        let got: Vec<_> = c.snapshot().filter(|(_, n)| *n > 0).collect();
        assert_eq!(got, vec![(StatementKind::Update, 2), (StatementKind::Transaction, 1)]);
    }
}
