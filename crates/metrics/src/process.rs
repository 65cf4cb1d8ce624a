//! The `process_*` metrics that every Prometheus client library exports, under the same names and
//! meanings (CPU seconds, resident and virtual memory, file descriptors, start time, threads), so
//! the dashboards and alerts written for other services work here too. They are read from the
//! kernel at each scrape (`getrusage`, `getrlimit`, `/proc/self`); one that cannot be read (no
//! `/proc` outside Linux) is left out rather than reported as zero.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
use nix::unistd::{SysconfVar, sysconf};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// Reads the process metrics at each scrape. The start time never changes: read once.
#[derive(Debug)]
pub struct Collector {
    start_time: Option<f64>,
}

impl Collector {
    pub fn new() -> Collector {
        Collector { start_time: start_time() }
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = cpu_seconds() {
            let help = "Total user and system CPU time spent in seconds.";
            emit(&mut e, "process_cpu", help, Some(Unit::Seconds), &ConstCounter::new(cpu))?;
        }
        // `c_long` is `i64` here but narrower on 32-bit targets.
        #[allow(clippy::useless_conversion)]
        let page = sysconf(SysconfVar::PAGE_SIZE).ok().flatten().map(i64::from);
        let statm = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| parse_statm(&s));
        if let (Some(page), Some(pages)) = (page, statm) {
            let help = "Resident memory size in bytes.";
            emit(
                &mut e,
                "process_resident_memory",
                help,
                Some(Unit::Bytes),
                &count(pages.resident.saturating_mul(page)),
            )?;
            let help = "Virtual memory size in bytes.";
            emit(&mut e, "process_virtual_memory", help, Some(Unit::Bytes), &count(pages.size.saturating_mul(page)))?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = i64::try_from(fds.count()).unwrap_or(i64::MAX);
            emit(&mut e, "process_open_fds", "Number of open file descriptors.", None, &count(open))?;
        }
        if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let help = "Maximum number of open file descriptors.";
            emit(&mut e, "process_max_fds", help, None, &count(i64::try_from(soft).unwrap_or(i64::MAX)))?;
        }
        if let Some(start) = self.start_time {
            let help = "Start time of the process since unix epoch in seconds.";
            emit(&mut e, "process_start_time", help, Some(Unit::Seconds), &gauge(start))?;
        }
        let stat = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| parse_stat(&s));
        if let Some(stat) = stat {
            emit(&mut e, "process_threads", "Number of OS threads in the process.", None, &count(stat.threads))?;
        }
        Ok(())
    }
}

fn gauge(v: f64) -> ConstGauge<f64> {
    ConstGauge::new(v)
}

/// Whole numbers print as such (`6`, not `6.0`).
fn count(v: i64) -> ConstGauge<i64> {
    ConstGauge::new(v)
}

fn emit(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<Unit>,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(e.encode_descriptor(name, help, unit.as_ref(), metric.metric_type())?)
}

/// User and system CPU time of the whole process (every thread), in seconds.
fn cpu_seconds() -> Option<f64> {
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    Some(seconds(usage.user_time()) + seconds(usage.system_time()))
}

/// When the process started, in seconds since the epoch: the boot time plus the start in clock
/// ticks since boot. Falls back to now (the registry is made at start) where `/proc` is missing.
fn start_time() -> Option<f64> {
    let from_proc = || -> Option<f64> {
        let ticks = sysconf(SysconfVar::CLK_TCK).ok().flatten()? as f64;
        let stat = parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let boot = parse_boot_time(&std::fs::read_to_string("/proc/stat").ok()?)?;
        Some(boot as f64 + stat.start_ticks as f64 / ticks)
    };
    from_proc().or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs_f64()))
}

/// What the metrics use of `/proc/self/stat`.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    threads: i64,
    start_ticks: i64,
}

/// Parses `/proc/self/stat`. The command name (field 2) is in parentheses and may hold spaces and
/// parentheses itself, so the fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (the state): field n is at n - 3.
    let field = |n: usize| fields.get(n - 3)?.parse().ok();
    Some(Stat { threads: field(20)?, start_ticks: field(22)? })
}

/// Sizes in pages from `/proc/self/statm`.
#[derive(Debug, PartialEq, Eq)]
struct Pages {
    size: i64,
    resident: i64,
}

fn parse_statm(text: &str) -> Option<Pages> {
    let mut fields = text.split_whitespace().map(str::parse::<i64>);
    Some(Pages { size: fields.next()?.ok()?, resident: fields.next()?.ok()? })
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_end_of_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 713 0 0 0 12 3 0 0 20 0 7 0 98765 \
                    23658496 1510 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat(line), Some(Stat { threads: 7, start_ticks: 98765 }));
        assert_eq!(parse_stat("no parenthesis"), None);
        assert_eq!(parse_stat("1 (short) S 1"), None);
    }

    #[test]
    fn statm_and_boot_time_parse() {
        assert_eq!(parse_statm("5776 1510 1243 261 0 500 0\n"), Some(Pages { size: 5776, resident: 1510 }));
        assert_eq!(parse_statm("x"), None);
        assert_eq!(parse_boot_time("cpu  1 2 3\nbtime 1700000000\nprocesses 9\n"), Some(1_700_000_000));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn this_process_is_measured() {
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        let start = start_time().unwrap();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(start <= now + 1.0 && start > now - 86_400.0 * 365.0, "{start} vs {now}");
    }
}
