//! Release history: one row per deploy or rollback with who, when, what
//! images, which strategy, the outcome and every step's event. The spec
//! stored with a release holds secret names, never values.

use super::{StateError, Store, now};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// Where a release stands in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    InProgress,
    Succeeded,
    Failed,
    /// A later release returned to an earlier one, or a canary was aborted.
    RolledBack,
    /// The deploying process stopped before it finished.
    Interrupted,
    /// A canary waits for `promote` or `rollback`.
    Paused,
}

impl ReleaseStatus {
    pub const ALL: [ReleaseStatus; 6] = [
        ReleaseStatus::InProgress,
        ReleaseStatus::Succeeded,
        ReleaseStatus::Failed,
        ReleaseStatus::RolledBack,
        ReleaseStatus::Interrupted,
        ReleaseStatus::Paused,
    ];

    /// The word stored in the database and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::InProgress => "in_progress",
            ReleaseStatus::Succeeded => "succeeded",
            ReleaseStatus::Failed => "failed",
            ReleaseStatus::RolledBack => "rolled_back",
            ReleaseStatus::Interrupted => "interrupted",
            ReleaseStatus::Paused => "paused",
        }
    }
}

impl std::fmt::Display for ReleaseStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ReleaseStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ReleaseStatus::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown release status `{s}`"))
    }
}

impl rusqlite::types::FromSql for ReleaseStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|e: String| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

impl rusqlite::types::ToSql for ReleaseStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Release {
    pub profile: String,
    pub number: u32,
    pub status: ReleaseStatus,
    pub strategy: String,
    /// The release whose containers serve: itself, or the release a
    /// rollback returned to.
    pub runs: u32,
    pub actor: String,
    pub hosts: Vec<String>,
    pub fingerprint: String,
    pub images: serde_json::Value,
    #[serde(skip)]
    pub spec: String,
    pub reason: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub duration_ms: Option<u64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ReleaseEvent {
    pub at: String,
    pub phase: String,
    pub message: String,
}

/// Who runs the tool, for the audit trail.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| user_of_uid().unwrap_or_else(|| "unknown".into()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host}")
}

/// The login name of this process's user, from /etc/passwd.
fn user_of_uid() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid().to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2) == Some(&uid.as_str())).then(|| f[0].to_string())
    })
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<Release> {
    let hosts: String = r.get(6)?;
    let images: String = r.get(8)?;
    Ok(Release {
        profile: r.get(0)?,
        number: r.get(1)?,
        status: r.get(2)?,
        strategy: r.get(3)?,
        runs: r.get(4)?,
        actor: r.get(5)?,
        hosts: serde_json::from_str(&hosts).unwrap_or_default(),
        fingerprint: r.get(7)?,
        images: serde_json::from_str(&images).unwrap_or_default(),
        spec: r.get(9)?,
        reason: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        duration_ms: r.get::<_, Option<i64>>(13)?.map(|d| d as u64),
    })
}

const COLUMNS: &str = "profile, number, status, strategy, runs, actor, hosts, fingerprint, images, spec, reason, started_at, finished_at, duration_ms";

pub struct NewRelease<'a> {
    pub profile: &'a str,
    pub strategy: &'a str,
    pub runs: Option<u32>,
    pub hosts: &'a [String],
    pub fingerprint: &'a str,
    pub images: &'a serde_json::Value,
    pub spec: &'a str,
}

impl Store {
    /// Opens a release in progress and returns its number.
    pub fn begin_release(&mut self, n: NewRelease) -> Result<u32, StateError> {
        let tx = self.write_tx()?;
        let next: u32 = tx.query_row(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM releases WHERE profile = ?1",
            params![n.profile],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO releases (profile, number, status, strategy, runs, actor, hosts, fingerprint, images, spec, started_at) VALUES (?1, ?2, 'in_progress', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                n.profile,
                next,
                n.strategy,
                n.runs.unwrap_or(next),
                actor(),
                serde_json::to_string(n.hosts)?,
                n.fingerprint,
                n.images.to_string(),
                n.spec,
                now()
            ],
        )?;
        tx.commit()?;
        Ok(next)
    }

    pub fn finish_release(
        &mut self,
        profile: &str,
        number: u32,
        status: ReleaseStatus,
        reason: Option<&str>,
    ) -> Result<(), StateError> {
        let started: Option<String> = self
            .conn
            .query_row(
                "SELECT started_at FROM releases WHERE profile = ?1 AND number = ?2",
                params![profile, number],
                |r| r.get(0),
            )
            .optional()?;
        let ms = started
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|s| (jiff::Timestamp::now().as_millisecond() - s.as_millisecond()).max(0));
        self.conn.execute(
            "UPDATE releases SET status = ?3, reason = ?4, finished_at = ?5, duration_ms = ?6 WHERE profile = ?1 AND number = ?2",
            params![profile, number, status, reason, now(), ms],
        )?;
        Ok(())
    }

    pub fn release_event(
        &self,
        profile: &str,
        number: u32,
        phase: &str,
        message: &str,
    ) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO release_events (profile, number, at, phase, message) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![profile, number, now(), phase, message],
        )?;
        Ok(())
    }

    /// Newest first.
    pub fn releases(&self, profile: &str) -> Result<Vec<Release>, StateError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM releases WHERE profile = ?1 ORDER BY number DESC"
        ))?;
        let rows = st.query_map(params![profile], row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn release(&self, profile: &str, number: u32) -> Result<Option<Release>, StateError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM releases WHERE profile = ?1 AND number = ?2"),
                params![profile, number],
                row,
            )
            .optional()?)
    }

    /// Closes what an earlier run left open: a release still in progress
    /// was interrupted (its process died), a paused canary is superseded by
    /// the new deploy. Returns (release, runs, what was said) per release.
    pub fn settle_unfinished(
        &mut self,
        profile: &str,
    ) -> Result<Vec<(u32, u32, String)>, StateError> {
        let mut out = Vec::new();
        for r in self.releases(profile)? {
            let (status, why) = match r.status {
                ReleaseStatus::InProgress => (
                    ReleaseStatus::Interrupted,
                    "the deploying process stopped before it finished",
                ),
                ReleaseStatus::Paused => (
                    ReleaseStatus::RolledBack,
                    "a paused canary was superseded by a new deploy",
                ),
                _ => continue,
            };
            self.finish_release(profile, r.number, status, Some(why))?;
            out.push((
                r.number,
                r.runs,
                format!("release {}: {why}; marked {status}", r.number),
            ));
        }
        Ok(out)
    }

    /// The release serving now: the newest one that succeeded.
    pub fn live_release(&self, profile: &str) -> Result<Option<Release>, StateError> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM releases WHERE profile = ?1 AND status = 'succeeded' ORDER BY number DESC LIMIT 1"
                ),
                params![profile],
                row,
            )
            .optional()?)
    }

    pub fn release_events(
        &self,
        profile: &str,
        number: u32,
    ) -> Result<Vec<ReleaseEvent>, StateError> {
        let mut st = self.conn.prepare(
            "SELECT at, phase, message FROM release_events WHERE profile = ?1 AND number = ?2 ORDER BY rowid",
        )?;
        let rows = st.query_map(params![profile, number], |r| {
            Ok(ReleaseEvent {
                at: r.get(0)?,
                phase: r.get(1)?,
                message: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn record_check(
        &self,
        profile: &str,
        service: &str,
        check: &str,
        verdict: &str,
        detail: &str,
    ) -> Result<(), StateError> {
        self.conn.execute(
            "INSERT INTO monitor_checks (profile, at, service, check_name, verdict, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![profile, now(), service, check, verdict, detail],
        )?;
        Ok(())
    }

    /// Uptime over recorded checks: ok / (ok + failed); not-applicable
    /// checks count for neither.
    pub fn uptime(&self, profile: &str) -> Result<Option<f64>, StateError> {
        let (ok, failed): (i64, i64) = self.conn.query_row(
            "SELECT COALESCE(SUM(verdict = 'ok'), 0), COALESCE(SUM(verdict = 'failed'), 0) FROM monitor_checks WHERE profile = ?1",
            params![profile],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((ok + failed > 0).then(|| ok as f64 / (ok + failed) as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes (here: connections on threads) recording releases of
    /// one profile at once: every write waits its turn, numbers stay unique.
    #[test]
    fn concurrent_writers_wait_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut s = Store::open(&path).unwrap();
                    (0..25)
                        .map(|_| {
                            let n = s
                                .begin_release(NewRelease {
                                    profile: "p",
                                    strategy: "rolling",
                                    runs: None,
                                    hosts: &[],
                                    fingerprint: "f",
                                    images: &serde_json::json!({}),
                                    spec: "{}",
                                })
                                .unwrap();
                            s.finish_release("p", n, ReleaseStatus::Succeeded, None)
                                .unwrap();
                            n
                        })
                        .collect::<Vec<u32>>()
                })
            })
            .collect();
        let mut all: Vec<u32> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (1..=100).collect::<Vec<u32>>());
    }
}
