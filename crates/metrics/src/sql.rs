//! `baton_sql_statements_total{kind}`: the statements this process sent to its database, read
//! from the store's own counters at each scrape (the store counts every statement it sends; the
//! registry only shows them, so the store needs no handle on the metrics).

use std::sync::Arc;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

/// Where the counts come from: `(kind, statements so far)` for every kind, the same kinds each
/// time (the store's `StatementCounts::snapshot`).
#[derive(Clone)]
pub struct SqlStatements(pub Arc<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>);

impl std::fmt::Debug for SqlStatements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SqlStatements")
    }
}

#[derive(Debug)]
pub(crate) struct Collector(pub(crate) SqlStatements);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let help =
            "SQL statements this process sent to its database, by kind (transaction: one per transaction begun).";
        let mut family = e.encode_descriptor("baton_sql_statements", help, None, MetricType::Counter)?;
        for (kind, n) in (self.0.0)() {
            let labels = [("kind", kind)];
            ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}
