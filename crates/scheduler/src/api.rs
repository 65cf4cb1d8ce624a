//! The internal `Schedules` gRPC service: the gateway creates, changes, deletes and previews
//! schedules through it, because the scheduler is the only writer of the schedules table; and it
//! previews unsaved expressions here too, so that one parser decides what a cron means. Every
//! call must carry the cluster secret. Each change is announced so every node's firing loop
//! picks it up at once.

use baton_coord::{Coord, topic};
use baton_core::Coded;
use baton_proto::v1::{self as pb, schedules_server::Schedules};
use baton_store::scheduler::{ScheduleFields, Tables};
use bytes::Bytes;
use tonic::{Request, Response, Status};

use crate::cron::Cron;

/// The most due times one preview returns.
const MAX_PREVIEW: u32 = 100;

pub struct SchedulesApi {
    pub tables: Tables,
    pub coord: Coord,
    pub cluster_secret: baton_core::internal::ClusterSecret,
    pub clock: fn() -> i64,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {message}"))
}

impl SchedulesApi {
    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        baton_core::internal::check(req, &self.cluster_secret)
    }

    async fn announce(&self) {
        let _ = self.coord.publish(topic::SCHEDULES, Bytes::new()).await;
    }
}

/// Merges `f` into `base` (all of it for a new schedule) and checks the result.
fn merge(base: Option<ScheduleFields>, f: pb::ScheduleFields) -> Result<ScheduleFields, Status> {
    let creating = base.is_none();
    let mut s = base.unwrap_or(ScheduleFields {
        template_id: 0,
        cron: None,
        timezone: "UTC".into(),
        run_at: None,
        enabled: true,
        catch_up: "latest".into(),
        overlap: "allow".into(),
    });
    if let Some(t) = f.template_id {
        s.template_id = t;
    }
    match (f.cron, f.run_at_ms) {
        (Some(_), Some(_)) => return Err(invalid("cron", "give either cron or run_at, not both")),
        (Some(c), None) => (s.cron, s.run_at) = (Some(c.trim().to_owned()), None),
        (None, Some(at)) => (s.cron, s.run_at) = (None, Some(at)),
        (None, None) if creating => return Err(invalid("cron", "is required (or run_at for a one-shot schedule)")),
        (None, None) => {}
    }
    if let Some(tz) = f.timezone {
        s.timezone = if tz.is_empty() { "UTC".into() } else { tz };
    }
    if let Some(e) = f.enabled {
        s.enabled = e;
    }
    if let Some(c) = f.catch_up {
        if !matches!(c.as_str(), "latest" | "none") {
            return Err(invalid("catch_up", format!("{c:?} is not one of latest, none")));
        }
        s.catch_up = c;
    }
    if let Some(o) = f.overlap {
        if !matches!(o.as_str(), "allow" | "skip") {
            return Err(invalid("overlap", format!("{o:?} is not one of allow, skip")));
        }
        s.overlap = o;
    }
    if s.template_id <= 0 {
        return Err(invalid("template_id", "is required"));
    }
    // Its messages name the field (`cron: …`, `timezone: …`). A one-shot names a zone too.
    Cron::parse(s.cron.as_deref().unwrap_or("* * * * *"), &s.timezone).map_err(Status::invalid_argument)?;
    Ok(s)
}

#[tonic::async_trait]
impl Schedules for SchedulesApi {
    async fn create_schedule(
        &self,
        req: Request<pb::CreateScheduleRequest>,
    ) -> Result<Response<pb::ScheduleReply>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let fields = merge(None, r.fields.unwrap_or_default())?;
        let row = self.tables.create_schedule(r.project_id, fields, r.created_by).await.map_err(|e| e.to_status())?;
        self.announce().await;
        Ok(Response::new(pb::ScheduleReply { schedule_id: row.id }))
    }

    async fn update_schedule(
        &self,
        req: Request<pb::UpdateScheduleRequest>,
    ) -> Result<Response<pb::ScheduleReply>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let existing = self.tables.schedule(r.project_id, r.schedule_id).await.map_err(|e| e.to_status())?;
        let fields = merge(Some(ScheduleFields::of(&existing)), r.fields.unwrap_or_default())?;
        self.tables.update_schedule(r.project_id, r.schedule_id, fields).await.map_err(|e| e.to_status())?;
        self.announce().await;
        Ok(Response::new(pb::ScheduleReply { schedule_id: r.schedule_id }))
    }

    async fn delete_schedule(
        &self,
        req: Request<pb::DeleteScheduleRequest>,
    ) -> Result<Response<pb::DeleteScheduleResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        self.tables.delete_schedule(r.project_id, r.schedule_id).await.map_err(|e| e.to_status())?;
        self.announce().await;
        Ok(Response::new(pb::DeleteScheduleResponse {}))
    }

    async fn preview_schedule(
        &self,
        req: Request<pb::PreviewScheduleRequest>,
    ) -> Result<Response<pb::PreviewScheduleResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        let s = self.tables.schedule(r.project_id, r.schedule_id).await.map_err(|e| e.to_status())?;
        let count = r.count.clamp(1, MAX_PREVIEW) as usize;
        let now = (self.clock)();
        let times_ms = match (&s.cron, s.run_at) {
            (Some(expr), _) => Cron::parse(expr, &s.timezone).map_err(Status::invalid_argument)?.next_n(now, count),
            (None, Some(at)) if at > now && s.enabled => vec![at],
            _ => vec![],
        };
        Ok(Response::new(pb::PreviewScheduleResponse { times_ms }))
    }

    async fn preview_cron(
        &self,
        req: Request<pb::PreviewCronRequest>,
    ) -> Result<Response<pb::PreviewScheduleResponse>, Status> {
        self.check(&req)?;
        let r = req.into_inner();
        // The same parser and search as a saved schedule's, so a form shows what will fire;
        // its messages name the field (`cron: …`, `timezone: …`).
        let cron = Cron::parse(r.cron.trim(), &r.timezone).map_err(Status::invalid_argument)?;
        let count = r.count.clamp(1, MAX_PREVIEW) as usize;
        Ok(Response::new(pb::PreviewScheduleResponse { times_ms: cron.next_n((self.clock)(), count) }))
    }
}
