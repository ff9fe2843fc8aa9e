//! `kiln events` (or `kiln audit`) `[--follow] [--json] [--since T] [-n N] [--who DID]
//! [--action A]`: the event journal, the node's audit trail.

use super::Repo;
use crate::cli::EventsArgs;
use anyhow::{Result, anyhow, bail};
use kiln_store::journal::Query;
use kiln_wire::EventView;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How many events `kiln events` prints without `--since` or `-n`.
const DEFAULT_LAST: usize = 50;

/// How often `--follow` looks for new events.
const POLL: Duration = Duration::from_millis(500);

pub fn run(repo: &Repo, a: EventsArgs) -> Result<ExitCode> {
    let since_ms = a.since.as_deref().map(parse_since).transpose()?;
    let limit = a.limit.or(if since_ms.is_some() {
        None
    } else {
        Some(DEFAULT_LAST)
    });
    let node = repo.node()?;
    // The last events (newest first, so the limit keeps the newest), printed oldest first.
    let filter = Query {
        who: a.who.clone(),
        action: a.action.clone(),
        ..Query::default()
    };
    let mut first = node.events(&Query {
        after: None,
        since_ms,
        limit,
        newest_first: true,
        ..filter.clone()
    })?;
    first.reverse();
    let mut out = std::io::stdout().lock();
    let mut last = 0;
    for e in &first {
        print(&mut out, e, a.json)?;
        last = e.id;
    }
    out.flush()?;
    if !a.follow {
        return Ok(ExitCode::SUCCESS);
    }
    if last == 0 {
        // Nothing printed yet: follow from the newest event there is now.
        last = node
            .events(&Query {
                limit: Some(1),
                newest_first: true,
                ..filter.clone()
            })?
            .first()
            .map_or(0, |e| e.id);
    }
    loop {
        std::thread::sleep(POLL);
        let new = node.events(&Query {
            after: Some(last),
            since_ms,
            limit: Some(1000),
            newest_first: false,
            ..filter.clone()
        })?;
        for e in &new {
            print(&mut out, e, a.json)?;
            last = e.id;
        }
        out.flush()?;
    }
}

fn print(out: &mut impl Write, e: &EventView, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(e)?)?;
        return Ok(());
    }
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(e.at_ms).unwrap_or(0));
    let mut line = format!(
        "{}  {}/{}  {}",
        kiln_build::schedule::format_utc(at),
        e.who,
        e.via,
        e.action
    );
    if !e.target.is_empty() {
        line.push_str("  ");
        line.push_str(&e.target);
    }
    match (e.ok, e.detail.is_empty()) {
        (false, _) => {
            line.push_str("  failed: ");
            line.push_str(&e.detail);
        }
        (true, false) => {
            line.push_str("  ");
            line.push_str(&e.detail);
        }
        (true, true) => {}
    }
    writeln!(out, "{line}")?;
    Ok(())
}

/// `--since`: a duration ago (`10m`, `2h`, `7d`) or a UTC date and time
/// (`2026-12-01`, `2026-12-01T10:00`, `2026-12-01T10:00:00Z`, `2026-12-01 10:00:00`).
fn parse_since(s: &str) -> Result<i64> {
    let s = s.trim();
    let to_ms = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    };
    if s.contains('-') {
        return kiln_build::schedule::parse_utc(s)
            .map(to_ms)
            .ok_or_else(|| anyhow!("bad time {s:?}: use a UTC time such as 2026-12-01T10:00:00Z, or a duration ago such as 2h or 7d"));
    }
    let ago = kiln_wire::parse_duration(s).map_err(|e| anyhow!("--since: {e}"))?;
    let Some(t) = SystemTime::now().checked_sub(ago) else {
        bail!("--since {s:?} is before the epoch");
    };
    Ok(to_ms(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_times_and_durations() {
        use kiln_build::schedule::parse_utc;
        let at = |s: &str| {
            parse_utc(s)
                .map(|t| t.duration_since(UNIX_EPOCH).unwrap().as_secs())
                .unwrap_or(0)
        };
        assert_eq!(at("1970-01-02"), 86_400);
        assert_eq!(at("2026-12-01T10:00:00Z"), 1_796_119_200);
        assert_eq!(at("2026-12-01 10:00"), 1_796_119_200);
        assert_eq!(
            kiln_build::schedule::format_utc(parse_utc("2024-02-29T23:59:59Z").unwrap()),
            "2024-02-29 23:59:59 UTC"
        );
        assert!(parse_utc("2026-13-01").is_none());
        assert!(parse_utc("2026-12-01T25:00").is_none());
        assert!(parse_since("yesterday").is_err());
        let ago = parse_since("2h").unwrap();
        let now = i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        assert!((now - ago - 7_200_000).abs() < 60_000);
    }
}
