//! State: profiles (an app plus where and how it runs) in an embedded SQLite
//! database, with every change kept as a version. Secret values are never
//! stored here: profiles hold secret names only. This layer only persists
//! and types what it stores (`settings.rs`, `releases.rs`); policy lives above.

use crate::describe::app::App;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE profiles (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE profile_versions (
        profile_id TEXT NOT NULL REFERENCES profiles(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        snapshot TEXT NOT NULL,
        change TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (profile_id, version)
    );",
    "CREATE TABLE releases (
        profile TEXT NOT NULL,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        strategy TEXT NOT NULL,
        runs INTEGER NOT NULL,
        actor TEXT NOT NULL,
        hosts TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        images TEXT NOT NULL,
        spec TEXT NOT NULL,
        reason TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        duration_ms INTEGER,
        PRIMARY KEY (profile, number)
    );
    CREATE TABLE release_events (
        profile TEXT NOT NULL,
        number INTEGER NOT NULL,
        at TEXT NOT NULL,
        phase TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX release_events_by_release ON release_events (profile, number);
    CREATE TABLE monitor_checks (
        profile TEXT NOT NULL,
        at TEXT NOT NULL,
        service TEXT NOT NULL,
        check_name TEXT NOT NULL,
        verdict TEXT NOT NULL,
        detail TEXT NOT NULL
    );",
];

pub mod releases;
pub mod settings;

/// An applied swap as stored in a profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct AppliedSwap {
    pub from: String,
    pub to: String,
    /// Limit to one dependency by name; all of that kind when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
}

/// Everything a profile says; stored whole as JSON per version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub tier: u8,
    #[serde(default)]
    pub settings: settings::Settings,
    #[serde(default)]
    pub swaps: Vec<AppliedSwap>,
    /// Where the app description came from.
    pub app_source: String,
    /// The app as imported when the profile was created.
    pub app: App,
    #[serde(default)]
    pub version: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no profile named or with id `{0}`")]
    NotFound(String),
    #[error("a profile named `{0}` already exists")]
    Exists(String),
    #[error("profile `{0}` has no version {1}")]
    NoVersion(String, u32),
    #[error("cannot create state directory {0}: {1}")]
    Dir(String, std::io::Error),
    #[error("{0}")]
    BadName(String),
}

impl StateError {
    /// The database itself failed (not what was asked of it).
    pub fn is_storage(&self) -> bool {
        matches!(
            self,
            StateError::Sql(_) | StateError::Json(_) | StateError::Dir(..)
        )
    }
}

/// Longest profile name: it becomes part of container, network and DNS
/// names (`dm-<profile>-<service>`), which allow 63 characters a label.
pub const MAX_PROFILE_NAME: usize = 40;

/// The one rule for profile names, however a profile enters (create,
/// import, upload, migrate, rename): letters, digits, `-` and `_`, starting
/// with a letter or digit. Anything else could break out of the places a
/// name is written (pages, scripts, container names, shell lines).
pub fn check_profile_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_PROFILE_NAME
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        return Ok(());
    }
    let shown: String = name.chars().take(60).flat_map(char::escape_debug).collect();
    Err(StateError::BadName(format!(
        "invalid profile name \"{shown}\": profile names use letters, digits, `-` and `_`, starting with a letter or digit, at most {MAX_PROFILE_NAME} characters"
    )))
}

pub struct Store {
    conn: Connection,
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// The default database: `$XDG_DATA_HOME/deployment-manager/state.db`.
pub fn default_path() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("deployment-manager")
        .join("state.db")
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StateError::Dir(dir.display().to_string(), e))?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(15))?;
        // Switching to WAL needs a moment alone with the file and does not
        // wait on the busy timeout, so a second process opening a new
        // database at the same time retries instead of failing.
        let mut tries = 0;
        loop {
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            if mode.eq_ignore_ascii_case("wal") {
                break;
            }
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && tries < 300 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store { conn };
        store.migrate()?;
        Ok(store)
    }

    /// A write transaction that takes the write lock up front: a deferred
    /// one that reads first and writes later fails at once with "database
    /// is locked" when another process wrote in between (WAL snapshots
    /// cannot be upgraded), whereas this one waits on the busy timeout.
    fn write_tx(&mut self) -> rusqlite::Result<rusqlite::Transaction<'_>> {
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
    }

    /// Schema migrations keyed on `PRAGMA user_version`.
    fn migrate(&mut self) -> Result<(), StateError> {
        loop {
            // Read the version under the write lock: two processes opening
            // an old database at once must not both run a migration.
            let tx = self.write_tx()?;
            let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let Some(sql) = MIGRATIONS.get(current as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", current + 1)?;
            tx.commit()?;
        }
    }

    pub fn create(
        &mut self,
        name: &str,
        tier: u8,
        app_source: &str,
        app: App,
    ) -> Result<Profile, StateError> {
        check_profile_name(name)?;
        if self.find(name)?.is_some() {
            return Err(StateError::Exists(name.into()));
        }
        let id = format!("profile-{}", jiff::Timestamp::now().as_millisecond());
        let profile = Profile {
            id,
            name: name.into(),
            tier,
            settings: Default::default(),
            swaps: Vec::new(),
            app_source: app_source.into(),
            app,
            version: 1,
        };
        let snap = serde_json::to_string(&profile)?;
        let t = now();
        let tx = self.write_tx()?;
        tx.execute("INSERT INTO profiles (id, name, version, snapshot, created_at, updated_at) VALUES (?1, ?2, 1, ?3, ?4, ?4)", params![profile.id, name, snap, t])?;
        tx.execute("INSERT INTO profile_versions (profile_id, version, snapshot, change, created_at) VALUES (?1, 1, ?2, 'created', ?3)", params![profile.id, snap, t])?;
        tx.commit()?;
        Ok(profile)
    }

    /// By id or by name.
    pub fn find(&self, key: &str) -> Result<Option<Profile>, StateError> {
        let snap: Option<String> = self
            .conn
            .query_row(
                "SELECT snapshot FROM profiles WHERE id = ?1 OR name = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match snap {
            Some(s) => Some(serde_json::from_str(&s)?),
            None => None,
        })
    }

    pub fn get(&self, key: &str) -> Result<Profile, StateError> {
        self.find(key)?
            .ok_or_else(|| StateError::NotFound(key.into()))
    }

    pub fn list(&self) -> Result<Vec<Profile>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT snapshot FROM profiles ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.map(|r| Ok(serde_json::from_str(&r?)?)).collect()
    }

    /// Saves a changed profile as a new version, atomically.
    pub fn update(&mut self, mut profile: Profile, change: &str) -> Result<Profile, StateError> {
        check_profile_name(&profile.name)?;
        let tx = self.write_tx()?;
        let current: u32 = tx
            .query_row(
                "SELECT version FROM profiles WHERE id = ?1",
                [&profile.id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| StateError::NotFound(profile.id.clone()))?;
        profile.version = current + 1;
        let snap = serde_json::to_string(&profile)?;
        let t = now();
        tx.execute("UPDATE profiles SET version = ?2, snapshot = ?3, updated_at = ?4, name = ?5 WHERE id = ?1", params![profile.id, profile.version, snap, t, profile.name])?;
        tx.execute("INSERT INTO profile_versions (profile_id, version, snapshot, change, created_at) VALUES (?1, ?2, ?3, ?4, ?5)", params![profile.id, profile.version, snap, change, t])?;
        tx.commit()?;
        Ok(profile)
    }

    pub fn delete(&mut self, key: &str) -> Result<(), StateError> {
        let p = self.get(key)?;
        self.conn
            .execute("DELETE FROM profiles WHERE id = ?1", [&p.id])?;
        Ok(())
    }

    /// (version, change, created_at)
    pub fn versions(&self, key: &str) -> Result<Vec<(u32, String, String)>, StateError> {
        let p = self.get(key)?;
        let mut stmt = self.conn.prepare("SELECT version, change, created_at FROM profile_versions WHERE profile_id = ?1 ORDER BY version")?;
        let rows = stmt.query_map([&p.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn version(&self, key: &str, version: u32) -> Result<Profile, StateError> {
        let p = self.get(key)?;
        let snap: Option<String> = self
            .conn
            .query_row(
                "SELECT snapshot FROM profile_versions WHERE profile_id = ?1 AND version = ?2",
                params![p.id, version],
                |r| r.get(0),
            )
            .optional()?;
        let snap = snap.ok_or_else(|| StateError::NoVersion(key.into(), version))?;
        Ok(serde_json::from_str(&snap)?)
    }

    /// Makes an old version current again, as a new version.
    pub fn rollback(&mut self, key: &str, version: u32) -> Result<Profile, StateError> {
        let current = self.get(key)?;
        let mut old = self.version(key, version)?;
        old.id = current.id;
        self.update(old, &format!("rollback to version {version}"))
    }
}

/// Top-level differences between two profile versions, as `key: old → new`.
pub fn diff(a: &Profile, b: &Profile) -> Vec<String> {
    let (va, vb) = (
        serde_json::to_value(a).unwrap_or_default(),
        serde_json::to_value(b).unwrap_or_default(),
    );
    let mut out = Vec::new();
    fn walk(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    if k == "version" && path.is_empty() {
                        continue;
                    }
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &p,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        out,
                    );
                }
            }
            _ if a != b => out.push(format!("{path}: {a} → {b}")),
            _ => {}
        }
    }
    walk("", &va, &vb, &mut out);
    out
}
