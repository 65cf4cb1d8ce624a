//! The document's links: from an answer that creates something to the operations that take it
//! next (a created project's id is the `{pid}` of its templates, a template's id the
//! `template_id` of a task, …). They tell client generators and people how the operations
//! chain, and they lead the fuzzer's stateful phase (`scripts/check-api.sh`) from creating a
//! thing to using it, instead of guessing ids.

use serde_json::{Value, json};
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{OpenApi, RefOr};

/// Links from one answer.
struct Follow {
    /// The operation and the status of the answer the values come from.
    from: (&'static str, &'static str),
    /// The operations it leads to.
    to: &'static [&'static str],
    /// Their parameters, as runtime expressions over the request and the answer.
    params: &'static [(&'static str, &'static str)],
    /// A request body for them, with runtime expressions as values.
    body: fn() -> Option<Value>,
}

const NEW_ID_AS_PID: (&str, &str) = ("pid", "$response.body#/id");
const SAME_PID: (&str, &str) = ("pid", "$request.path.pid");

fn no_body() -> Option<Value> {
    None
}

const FOLLOWS: &[Follow] = &[
    Follow {
        from: ("create_project", "201"),
        to: &[
            "get_project",
            "update_project",
            "delete_project",
            "list_members",
            "list_secrets",
            "create_secret",
            "list_templates",
            "create_template",
            "list_tasks",
            "list_schedules",
            "preview_cron",
            "create_project_registration_token",
            "list_project_audit",
        ],
        params: &[NEW_ID_AS_PID],
        body: no_body,
    },
    Follow {
        from: ("create_template", "201"),
        to: &["get_template", "update_template", "delete_template"],
        params: &[SAME_PID, ("tid", "$response.body#/id")],
        body: no_body,
    },
    Follow {
        from: ("create_template", "201"),
        to: &["create_task"],
        params: &[SAME_PID],
        body: || Some(json!({"template_id": "$response.body#/id"})),
    },
    Follow {
        from: ("create_template", "201"),
        to: &["create_schedule"],
        params: &[SAME_PID],
        body: || Some(json!({"template_id": "$response.body#/id", "cron": "0 3 * * *"})),
    },
    Follow {
        from: ("create_task", "201"),
        to: &["get_task", "list_attempts", "get_log", "get_raw_log", "cancel_task"],
        params: &[SAME_PID, ("id", "$response.body#/id")],
        body: no_body,
    },
    Follow {
        from: ("create_schedule", "201"),
        to: &["get_schedule", "update_schedule", "delete_schedule", "next_times", "list_fires"],
        params: &[SAME_PID, ("sid", "$response.body#/id")],
        body: no_body,
    },
    Follow {
        from: ("create_secret", "201"),
        to: &["update_secret", "delete_secret"],
        params: &[SAME_PID, ("name", "$response.body#/name")],
        body: no_body,
    },
    Follow {
        from: ("set_member", "200"),
        to: &["remove_member"],
        params: &[SAME_PID, ("uid", "$request.path.uid")],
        body: no_body,
    },
    Follow {
        from: ("create_user", "201"),
        to: &["update_user", "delete_user"],
        params: &[("uid", "$response.body#/id")],
        body: no_body,
    },
    Follow {
        from: ("create_token", "201"),
        to: &["delete_token"],
        params: &[("id", "$response.body#/id")],
        body: no_body,
    },
    Follow {
        from: ("get_cluster", "200"),
        to: &["drain_node"],
        params: &[("node_id", "$response.body#/nodes/0/id")],
        // Undraining: a drained node would answer readiness probes with 503 for the rest of a run.
        body: || Some(json!({"draining": false})),
    },
];

/// Adds the links to the answers they start from.
pub fn apply(doc: &mut OpenApi) {
    for follow in FOLLOWS {
        let (from, status) = follow.from;
        let Some(RefOr::T(resp)) = super::operations(doc)
            .find(|op| op.operation_id.as_deref() == Some(from))
            .and_then(|op| op.responses.responses.get_mut(status))
        else {
            continue;
        };
        for to in follow.to {
            let mut link = LinkBuilder::new().operation_id(*to).request_body((follow.body)());
            for (name, expr) in follow.params {
                link = link.parameter(*name, *expr);
            }
            resp.links.insert((*to).to_owned(), RefOr::T(link.build()));
        }
    }
}

/// Every (from, to) operation id the links name, for the tests.
#[cfg(test)]
pub fn named() -> impl Iterator<Item = &'static str> {
    FOLLOWS.iter().flat_map(|f| std::iter::once(f.from.0).chain(f.to.iter().copied()))
}
