//! A scrape of `/metrics` read back into series, so tests check values and label sets rather
//! than text.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One sample: its metric name, labels and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Every sample of one scrape, with the answer's `Content-Type`.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub content_type: String,
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    /// `GET {base}/metrics` without credentials; panics unless the answer is 200.
    pub async fn of(base: &str) -> Scrape {
        let resp = reqwest::get(format!("{base}/metrics")).await.expect("the node answers /metrics");
        assert_eq!(resp.status().as_u16(), 200, "/metrics");
        let content_type =
            resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let text = resp.text().await.expect("the scrape's body");
        let samples = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(parse).collect();
        Scrape { content_type, text, samples }
    }

    /// Scrapes until `ok` holds, for at most `wait` (gauges are sampled every second or five);
    /// panics with the last scrape otherwise.
    pub async fn until(base: &str, wait: Duration, ok: impl Fn(&Scrape) -> bool) -> Scrape {
        let start = Instant::now();
        loop {
            let s = Scrape::of(base).await;
            if ok(&s) {
                return s;
            }
            assert!(start.elapsed() < wait, "not as expected within {wait:?}:\n{}", s.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The value of the sample `name` whose labels include every pair of `labels`, if exactly
    /// one sample matches; panics when several do.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let found: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
        found.first().map(|s| s.value)
    }

    /// The value of `name` with `labels`, or 0 when there is no such sample (a counter never
    /// incremented).
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// Every value the label `label` takes in the samples of `name`.
    pub fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut out: Vec<String> =
            self.samples.iter().filter(|s| s.name == name).filter_map(|s| s.labels.get(label).cloned()).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Parses one sample line of the text format: `name{a="x",b="y"} value`. Label values here
/// hold no escaped quotes (route templates, statuses, versions).
fn parse(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
    let value = match value {
        "+Inf" => f64::INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("not a value in {line}")),
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.to_owned(), BTreeMap::new()),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').unwrap_or_else(|| panic!("unclosed labels: {line}"));
            let labels = body
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("not a label in {line}"));
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels)
        }
    };
    Sample { name, labels, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_parse() {
        let s = parse(r#"baton_http_requests_total{route="/api/v1/projects/{pid}",method="GET",status="200"} 3"#);
        assert_eq!(s.name, "baton_http_requests_total");
        assert_eq!(s.labels["route"], "/api/v1/projects/{pid}");
        assert_eq!(s.labels["status"], "200");
        assert_eq!(s.value, 3.0);
        assert_eq!(parse("baton_queue_depth 0").labels.len(), 0);
        assert_eq!(parse(r#"x_bucket{le="+Inf"} 2"#).labels["le"], "+Inf");
    }
}
