//! Runners' leases on a live node: the heartbeats of the runners connected to it are written
//! together, a few statements a second whatever the number of runners, and every runner that
//! keeps beating is renewed and stays online.

use std::time::{Duration, Instant};

use baton_testkit::{Scrape, TestServer};
use chrono::{DateTime, Utc};

use crate::hand_runner::HandRunner;

const RUNNERS: usize = 6;
/// How long the heartbeats are counted. The hand runners beat every 500 ms; the test server asks
/// for a heartbeat a second, so its leases are written every 250 ms at most.
const WINDOW: Duration = Duration::from_secs(3);
const EVERY_HAND_BEAT: Duration = Duration::from_millis(500);
const EVERY_WRITE: Duration = Duration::from_millis(250);

fn updates(s: &Scrape) -> f64 {
    s.get("baton_sql_statements_total", &[("kind", "update")]).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_heartbeats_of_many_runners_are_written_together_and_renew_each_lease() {
    let srv = TestServer::start_without_runner().await;
    let c = &srv.client;
    let mut runners = Vec::new();
    for i in 0..RUNNERS {
        runners.push(HandRunner::register(c, srv.grpc_url(), &format!("beating-{i}"), &["hand"]).await);
    }
    let mut streams = Vec::new();
    for r in &runners {
        streams.push(r.attach(Vec::new(), false).await);
    }

    let before = Scrape::of(srv.url.as_str()).await;
    let (started, since) = (Instant::now(), Utc::now());
    tokio::time::sleep(WINDOW).await;
    let after = Scrape::of(srv.url.as_str()).await;
    let elapsed = started.elapsed();

    let beats = RUNNERS as f64 * (elapsed.as_secs_f64() / EVERY_HAND_BEAT.as_secs_f64()).floor();
    let writes = updates(&after) - updates(&before);
    let most = (elapsed.as_secs_f64() / EVERY_WRITE.as_secs_f64()).ceil() + 1.0;
    assert!(writes >= 1.0, "the leases were renewed");
    assert!(writes <= most, "{beats} heartbeats took {writes} UPDATEs, more than one per {EVERY_WRITE:?}");

    for r in &runners {
        let row = c.get(&format!("/api/v1/runners/{}", r.id)).await.expect(200);
        assert_eq!(row["online"], true, "{row}");
        let seen: DateTime<Utc> = row["last_seen"].as_str().unwrap().parse().unwrap();
        assert!(seen > since, "runner {} renewed during the window: {row}", r.id);
    }
    drop(streams);
}
