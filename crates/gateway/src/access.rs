//! Who may do what: API.md's role table, decided in one place. A route asks for a [`Permission`]
//! in a project (or for an administrator), and gets the project and the caller's role — or the
//! answer every route gives alike: a project the caller cannot see is "not found" (exactly like
//! one that does not exist), and a refused action on a visible project is a 403 naming the role
//! it needs.
//!
//! The caller's role in a project is their membership's (administrators: owner everywhere),
//! lowered to what their API token was narrowed to; a token narrowed to one project sees no
//! other. It is read at every request, so a change of role takes effect at once.

use baton_store::entity::project;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{Error, Result};

/// A member's role in a project, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Viewer,
    Runner,
    Manager,
    Owner,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Runner, Role::Manager, Role::Owner];

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Runner => "runner",
            Role::Manager => "manager",
            Role::Owner => "owner",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route asks to do in a project (API.md, "Roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read the project, its templates, tasks, logs, schedules, secret names and members.
    Read,
    /// Run and cancel tasks.
    Run,
    /// Create, change and delete templates, schedules and secrets.
    Change,
    /// Change the project, its members and roles; mint its runner registration tokens; read
    /// its audit log; see, pause and revoke its runners.
    Own,
}

impl Permission {
    /// The weakest role that has this permission.
    pub fn role(self) -> Role {
        match self {
            Permission::Read => Role::Viewer,
            Permission::Run => Role::Runner,
            Permission::Change => Role::Manager,
            Permission::Own => Role::Owner,
        }
    }

    fn doing(self) -> &'static str {
        match self {
            Permission::Read => "reading",
            Permission::Run => "running and cancelling tasks",
            Permission::Change => "changing templates, schedules and secrets",
            Permission::Own => "managing the project, its members and runners",
        }
    }
}

/// A project the caller may act on, and their role in it.
#[derive(Debug)]
pub struct Access {
    pub project: project::Model,
    pub role: Role,
}

/// The project `pid` if the caller may do `need` in it.
pub async fn project(state: &AppState, caller: &Caller, pid: i64, need: Permission) -> Result<Access> {
    let Some(role) = role_in(state, caller, pid).await? else {
        return Err(Error::not_found(format!("project {pid}")));
    };
    let project = state.tables.project(pid).await?;
    allows(role, pid, need)?;
    Ok(Access { project, role })
}

/// The caller's role in project `pid` if it allows `need`, without reading the project: for a
/// caller who reads the project with what they need anyway, or who reached it through a row
/// that exists only in an existing project. An administrator's role needs no read at all, so
/// `Ok` does not prove that the project exists.
pub async fn role(state: &AppState, caller: &Caller, pid: i64, need: Permission) -> Result<Role> {
    let Some(role) = role_in(state, caller, pid).await? else {
        return Err(Error::not_found(format!("project {pid}")));
    };
    allows(role, pid, need)?;
    Ok(role)
}

fn allows(role: Role, pid: i64, need: Permission) -> Result<()> {
    if role < need.role() {
        return Err(Error::forbidden(format!(
            "{} in project {pid} needs the {} role; you have {role}",
            need.doing(),
            need.role()
        )));
    }
    Ok(())
}

/// The caller's role in project `pid`, `None` if they cannot see it (whether it exists or not).
pub async fn role_in(state: &AppState, caller: &Caller, pid: i64) -> Result<Option<Role>> {
    if caller.token.as_ref().is_some_and(|t| t.project_id.is_some_and(|p| p != pid)) {
        return Ok(None);
    }
    let base = if caller.user_admin {
        Some(Role::Owner)
    } else {
        state.tables.member_role(pid, caller.id).await?.as_deref().and_then(Role::parse)
    };
    Ok(base.map(|r| caller.cap(r)))
}

/// `Ok` if the caller acts as an administrator.
pub fn admin(caller: &Caller) -> Result<()> {
    if caller.is_admin() {
        return Ok(());
    }
    let why = if caller.user_admin {
        "only administrators may do this, and this API token is narrowed to less"
    } else {
        "only administrators may do this"
    };
    Err(Error::forbidden(why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_each_permission_needs_one() {
        assert!(Role::Viewer < Role::Runner && Role::Runner < Role::Manager && Role::Manager < Role::Owner);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Permission::Run.role(), Role::Runner);
        assert_eq!(Permission::Own.role(), Role::Owner);
    }
}
