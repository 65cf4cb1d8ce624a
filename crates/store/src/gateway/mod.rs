//! Queries on the tables the gateway owns: users, sessions, API tokens, projects, members,
//! templates, secrets and the audit log. Only
//! the gateway (and operator tools acting for it, such as `baton admin`) builds a [`Tables`].

pub mod audit;
pub mod identity;
pub mod log_start;
pub mod members;
pub mod projects;
pub mod secrets;
pub mod templates;
pub mod tokens;

/// The gateway's write access to its tables; reads of everything else go through the [`Store`](crate::Store)
/// it derefs to.
#[derive(Debug, Clone)]
pub struct Tables {
    store: crate::Store,
    /// Audit entries are written in groups (one INSERT for what arrives together).
    audit: crate::group::Group<crate::entity::audit_entry::Model>,
    /// The first reads of followed logs, grouped the same way (reads, but the mechanism is the
    /// same: what arrives together is asked in one statement).
    log_starts: crate::group::Group<i64, Option<log_start::LogStart>>,
}

impl Tables {
    pub fn new(store: crate::Store) -> Tables {
        let conn = store.conn().clone();
        let audit = crate::group::Group::new(audit::GROUP, move |entries| audit::insert(conn.clone(), entries));
        let conn = store.conn().clone();
        let log_starts = crate::group::Group::new(log_start::GROUP, move |ids| log_start::read(conn.clone(), ids));
        Tables { store, audit, log_starts }
    }
}

impl std::ops::Deref for Tables {
    type Target = crate::Store;
    fn deref(&self) -> &crate::Store {
        &self.store
    }
}
