//! Schedules, their due times and their fires.

use utoipa::ToSchema;

/// A template run on a cron expression, or once at a given time.
#[derive(ToSchema)]
pub struct Schedule {
    pub id: i64,
    pub project_id: i64,
    pub template_id: i64,
    /// 5 fields (minutes first) or 6 (seconds first); `null` for a one-shot schedule.
    pub cron: Option<String>,
    /// The IANA time zone the cron expression is read in.
    pub timezone: String,
    /// When a one-shot schedule fires.
    #[schema(format = DateTime)]
    pub run_at: Option<String>,
    pub enabled: bool,
    /// After an outage: `latest` fires once for the most recent missed due time, `none` not at all.
    pub catch_up: String,
    /// `allow` starts a task while the previous one runs, `skip` records the due time as skipped.
    pub overlap: String,
    pub created_by: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
}

/// Due times, soonest first.
#[derive(ToSchema)]
pub struct Times {
    #[schema(format = DateTime)]
    pub times: Vec<String>,
}

/// A due time of a schedule: the task it started, or why it was skipped.
#[derive(ToSchema)]
pub struct Fire {
    #[schema(format = DateTime)]
    pub due_at: String,
    /// `fired` or `skipped`.
    pub status: String,
    pub task_id: Option<i64>,
    pub reason: Option<String>,
}
