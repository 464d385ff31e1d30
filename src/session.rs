//! The application layer under both fronts. The CLI turns arguments into
//! calls on a `Session`, the dashboard turns HTTP requests into the same
//! calls; the catalog and fitness rules the user chose, the state
//! database and the one async runtime live here, and so do the rules a
//! front must not decide for itself (which engine, which strategy).

use crate::analyse::fitness::{self, rules::Rule};
use crate::catalog::Catalog;
use crate::deploy::EngineKind;
use crate::deploy::engines::{self, DeployRequest, LogsError, LogsRequest, RollbackRequest};
use crate::deploy::events::Progress;
use crate::deploy::release::{Failure, LockRequest, Report};
use crate::deploy::spec::{ReleaseSpec, collect_secrets};
use crate::deploy::strategy::{self, Options};
use crate::state::settings::Strategy;
use crate::state::{Profile, StateError, Store};
use std::path::PathBuf;
use std::sync::OnceLock;

pub struct Session {
    pub catalog: Catalog,
    /// Extra fitness rules (`--rules`), on top of the built-in table.
    pub rules: Vec<Rule>,
    /// The state database.
    pub state: PathBuf,
    runtime: OnceLock<Result<tokio::runtime::Runtime, String>>,
}

/// What a front may ask of a deploy beyond the defaults; everything left
/// out comes from the profile, then from [`Options::default`].
#[derive(Clone, Debug, Default)]
pub struct DeployAsk {
    pub strategy: Option<Strategy>,
    pub canary_steps: Option<String>,
    pub pause: Option<String>,
    pub bake: Option<String>,
}

impl Session {
    pub fn new(catalog: Catalog, rules: Vec<Rule>, state: PathBuf) -> Session {
        Session {
            catalog,
            rules,
            state,
            runtime: OnceLock::new(),
        }
    }

    pub fn store(&self) -> Result<Store, StateError> {
        Store::open(&self.state)
    }

    /// The fitness engine with the user's rules.
    pub fn fitness(&self) -> fitness::Engine<'_> {
        fitness::Engine::new(&self.catalog, self.rules.clone())
    }

    /// The one async runtime, started on first use. Callers on plain
    /// threads (the CLI, the dashboard's jobs) may block on it at once.
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime, String> {
        self.runtime
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| format!("cannot start the async runtime: {e}"))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    pub fn block_on<F: Future>(&self, f: F) -> Result<F::Output, String> {
        Ok(self.runtime()?.block_on(f))
    }

    /// Which engine deploys the profile, by this session's catalog.
    pub fn engine_of(&self, p: &Profile) -> EngineKind {
        p.settings.engine(&self.catalog)
    }

    /// Deploy options from what was asked, then the profile's settings.
    pub fn deploy_options(&self, p: &Profile, ask: &DeployAsk) -> Result<Options, String> {
        let mut o = Options {
            strategy: p.settings.strategy_or(ask.strategy),
            ..Options::default()
        };
        if let Some(s) = &ask.canary_steps {
            o.canary_steps = strategy::parse_steps(s)?;
        }
        if let Some(p) = &ask.pause {
            o.pause = strategy::parse_pause(p)?;
        }
        if let Some(b) = &ask.bake {
            o.bake = strategy::parse_duration(b)?;
        }
        Ok(o)
    }

    pub fn deploy(
        &self,
        p: &Profile,
        store: &mut Store,
        progress: &Progress,
        r: DeployRequest,
    ) -> Result<Report, Failure> {
        let kind = self.engine_of(p);
        self.block_on(engines::deploy(kind, p, store, progress, r))?
    }

    /// Deploys profile `name` as it stands (its app with swaps, its
    /// settings), secrets from the environment and `env_file`.
    pub fn deploy_profile(
        &self,
        name: &str,
        env_file: Option<&std::path::Path>,
        progress: &Progress,
        command: &str,
    ) -> Result<Report, Failure> {
        self.deploy_profile_as(name, env_file, progress, command, &DeployAsk::default())
    }

    /// [`Session::deploy_profile`] with options asked for (a bake of 0 when
    /// requests are held until the release serves, say).
    pub fn deploy_profile_as(
        &self,
        name: &str,
        env_file: Option<&std::path::Path>,
        progress: &Progress,
        command: &str,
        ask: &DeployAsk,
    ) -> Result<Report, Failure> {
        let mut store = self.store()?;
        let p = store.get(name)?;
        let app = fitness::swaps::effective(&p)?;
        let spec = ReleaseSpec::from_app(&app)?;
        let secrets = collect_secrets(&spec.secret_names(), env_file)?;
        let req = DeployRequest {
            spec,
            options: self.deploy_options(&p, ask)?,
            secrets,
            hosts: vec![],
            dry_run: false,
            lock: LockRequest {
                command: command.into(),
                ..LockRequest::default()
            },
        };
        self.deploy(&p, &mut store, progress, req)
    }

    pub fn rollback(
        &self,
        p: &Profile,
        store: &mut Store,
        progress: &Progress,
        r: RollbackRequest,
    ) -> Result<Report, Failure> {
        let kind = self.engine_of(p);
        self.block_on(engines::rollback(kind, p, store, progress, r))?
    }

    pub fn promote(
        &self,
        p: &Profile,
        store: &mut Store,
        progress: &Progress,
        hosts: &[String],
        lock: &LockRequest,
    ) -> Result<Report, Failure> {
        let kind = self.engine_of(p);
        self.block_on(engines::promote(kind, p, store, progress, hosts, lock))?
    }

    pub fn status(
        &self,
        p: &Profile,
        progress: &Progress,
        hosts: &[String],
    ) -> Result<serde_json::Value, Failure> {
        let kind = self.engine_of(p);
        self.block_on(engines::status(kind, p, progress, hosts))?
    }

    pub fn logs(
        &self,
        p: &Profile,
        progress: &Progress,
        r: &LogsRequest<'_>,
        sink: impl FnMut(&str, &str),
    ) -> Result<(), LogsError> {
        let kind = self.engine_of(p);
        self.block_on(engines::logs(kind, p, progress, r, sink))?
    }
}
