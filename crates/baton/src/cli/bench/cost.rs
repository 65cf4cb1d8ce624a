//! What a run cost the servers: CPU seconds and SQL statements per task, from each node's
//! `/metrics` read before and after the run (`process_cpu_seconds_total` and
//! `baton_sql_statements_total`), and the claims the dispatchers lost to each other
//! (`baton_claims_lost_total`). Whatever the servers did meanwhile counts too — the bench's own
//! WebSocket and API calls included, as any client's would — so measure on an otherwise idle
//! cluster.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// One node's counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    /// Statements by kind.
    pub statements: BTreeMap<String, f64>,
    /// Claims lost (0 from a server that does not count them).
    pub claims_lost: f64,
}

/// Reads the counters of every node listed.
pub async fn scrape_all(client: &reqwest::Client, urls: &[String]) -> anyhow::Result<Vec<Sample>> {
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        let r = client.get(url).send().await.with_context(|| format!("cannot read {url}"))?;
        if !r.status().is_success() {
            bail!("{url} answered {} (through a load balancer, give each node's own --metrics URL)", r.status());
        }
        out.push(parse(&r.text().await?).with_context(|| format!("{url} has no process_cpu_seconds_total"))?);
    }
    Ok(out)
}

/// The two counters out of a scrape in the Prometheus text format.
pub fn parse(text: &str) -> Option<Sample> {
    let mut sample = Sample::default();
    let mut cpu = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        if series == "process_cpu_seconds_total" {
            cpu = Some(value);
        } else if series == "baton_claims_lost_total" {
            sample.claims_lost = value;
        } else if let Some(labels) = series.strip_prefix("baton_sql_statements_total{") {
            let kind = labels.strip_prefix("kind=\"").and_then(|l| l.split('"').next()).unwrap_or("other");
            *sample.statements.entry(kind.to_owned()).or_default() += value;
        }
    }
    sample.cpu_seconds = cpu?;
    Some(sample)
}

/// The report's lines: CPU milliseconds per task (in total, and per node when there are
/// several), statements per task by kind, and claims lost per task.
pub fn report(urls: &[String], before: &[Sample], after: &[Sample], tasks: usize) -> Vec<String> {
    let tasks = tasks.max(1) as f64;
    let per_node: Vec<f64> = before.iter().zip(after).map(|(b, a)| (a.cpu_seconds - b.cpu_seconds) * 1000.0).collect();
    let total: f64 = per_node.iter().sum();
    let mut cpu = format!("server CPU per task          {:.3} ms", total / tasks);
    if per_node.len() > 1 {
        let nodes: Vec<String> = urls.iter().zip(&per_node).map(|(u, ms)| format!("{u} {:.3}", ms / tasks)).collect();
        cpu.push_str(&format!(" ({})", nodes.join(", ")));
    }
    let mut kinds: BTreeMap<&str, f64> = BTreeMap::new();
    for (b, a) in before.iter().zip(after) {
        for (kind, n) in &a.statements {
            *kinds.entry(kind).or_default() += n - b.statements.get(kind).copied().unwrap_or(0.0);
        }
    }
    let sum: f64 = kinds.values().sum();
    let by_kind: Vec<String> =
        kinds.iter().filter(|(_, n)| **n > 0.0).map(|(k, n)| format!("{k} {:.2}", n / tasks)).collect();
    let lost: f64 = before.iter().zip(after).map(|(b, a)| a.claims_lost - b.claims_lost).sum();
    vec![
        cpu,
        format!("SQL statements per task      {:.2} ({})", sum / tasks, by_kind.join(", ")),
        format!("claims lost per task         {:.3}", lost / tasks),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n\
        # TYPE process_cpu_seconds_total counter\n\
        process_cpu_seconds_total 1.5\n\
        baton_sql_statements_total{kind=\"select\"} 40\n\
        baton_sql_statements_total{kind=\"update\"} 30\n\
        baton_claims_lost_total 4\n\
        baton_tasks_submitted_total 10\n";

    #[test]
    fn a_scrape_gives_cpu_and_statements() {
        let s = parse(SCRAPE).unwrap();
        assert_eq!(s.cpu_seconds, 1.5);
        assert_eq!(s.statements.get("select"), Some(&40.0));
        assert_eq!(s.statements.get("update"), Some(&30.0));
        assert_eq!(s.claims_lost, 4.0);
        assert_eq!(parse("baton_tasks_submitted_total 3\n"), None, "no CPU figure, no sample");
    }

    #[test]
    fn the_report_divides_the_growth_by_the_tasks() {
        let before = parse(SCRAPE).unwrap();
        let mut after = before.clone();
        after.cpu_seconds += 0.2;
        *after.statements.get_mut("select").unwrap() += 40.0;
        *after.statements.get_mut("update").unwrap() += 30.0;
        after.statements.insert("transaction".into(), 20.0);
        after.claims_lost += 5.0;
        let urls = vec!["a".to_owned(), "b".to_owned()];
        let lines = report(&urls, &[before.clone(), before.clone()], &[after.clone(), before], 100);
        assert_eq!(lines[0], "server CPU per task          2.000 ms (a 2.000, b 0.000)");
        assert_eq!(lines[1], "SQL statements per task      0.90 (select 0.40, transaction 0.20, update 0.30)");
        assert_eq!(lines[2], "claims lost per task         0.050");
    }
}
