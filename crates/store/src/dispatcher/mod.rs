//! Queries on the tables the dispatcher owns: tasks, task attempts, task log chunks, runners.
//! Every change of a task's state is a compare-and-set on (id, expected states, epoch); the epoch
//! is the fencing token, bumped whenever a task changes hands.

pub mod batch;
mod create;
pub mod fires;
mod locked;
pub mod logs;
pub mod reports;
pub mod retention;
pub mod runners;
pub mod tasks;

/// The dispatcher's write access to its tables.
#[derive(Debug, Clone)]
pub struct Tables {
    store: crate::Store,
    /// Tasks submitted at about the same time are inserted together (where the database hands
    /// the rows back: PostgreSQL, SQLite and MariaDB).
    creating: crate::group::Group<tasks::NewTask, crate::entity::task::Model>,
}

impl Tables {
    pub fn new(store: crate::Store) -> Tables {
        let conn = store.conn().clone();
        let creating =
            crate::group::Group::new(create::CREATE_GROUP, move |new| create::insert_many(conn.clone(), new));
        Tables { store, creating }
    }
}

impl std::ops::Deref for Tables {
    type Target = crate::Store;
    fn deref(&self) -> &crate::Store {
        &self.store
    }
}
