//! The command line: argument parsing and printing only; every decision is
//! made in the library.

pub mod deploy;
pub mod kubernetes;
pub mod migrate;
pub mod output;
pub mod split;
pub mod swarm;
pub mod targets;

use crate::analyse::cost::{self, Strategy};
use crate::analyse::fitness::{self, Engine, Status, parse_tier, swaps};
use crate::analyse::plan;
use crate::catalog::Catalog;
use crate::describe::{self, app::App, diagnostic::SpecError};
use crate::state::{self, Store};
use clap::{Parser, Subcommand};
use output::{json, money, paint, score_cell, table};
use std::path::{Path, PathBuf};

#[derive(Parser, Debug)]
#[command(
    name = "deployment-manager",
    version,
    about = "Where can this app run, what will it cost there, and how do we get it there without downtime?",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// State database (default: the user's data directory).
    #[arg(long, global = true, env = "DEPLOYMENT_MANAGER_STATE")]
    pub state: Option<PathBuf>,
    /// A catalog file whose prices and targets override or add to the built-in ones.
    #[arg(long, global = true)]
    pub catalog: Option<PathBuf>,
    /// Extra fitness rules (same format as the built-in table).
    #[arg(long, global = true)]
    pub rules: Option<PathBuf>,
    /// Compose profiles to activate when reading a compose file.
    #[arg(long = "compose-profile", global = true)]
    pub compose_profiles: Vec<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print a JSON Schema: `app` (app.yaml).
    Schema { which: String },
    /// Turn a compose file or Kubernetes manifests into app.yaml.
    Import {
        path: PathBuf,
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Score every tier and target: blockers, warnings, swaps.
    Fitness {
        /// app.yaml, compose file, manifests folder or profile name.
        app: String,
        #[arg(long)]
        tier: Option<String>,
        #[arg(long)]
        target: Option<String>,
        /// Exit 1 when the selected tier or target is blocked.
        #[arg(long)]
        fail_on_blockers: bool,
        /// Run these services on another target, the rest on `--target`:
        /// `--split web=vercel` (repeatable; `a,b=TARGET` moves several).
        #[arg(long = "split", value_name = "SERVICES=TARGET")]
        split: Vec<String>,
    },
    /// Monthly cost with a breakdown.
    #[command(name = "estimate-cost")]
    EstimateCost {
        app: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        users: Option<u32>,
        #[arg(long, default_value = "rolling")]
        strategy: String,
        #[arg(long)]
        verbose: bool,
        /// Run these services on another target, the rest on `--target`:
        /// `--split web=vercel` (repeatable; `a,b=TARGET` moves several).
        #[arg(long = "split", value_name = "SERVICES=TARGET")]
        split: Vec<String>,
    },
    /// Fitness and cost for every target at several user levels, the growth
    /// path and a recommendation per use case.
    Plan {
        app: String,
        #[arg(long, value_delimiter = ',')]
        users: Option<Vec<u32>>,
        #[arg(long, default_value = "rolling")]
        strategy: String,
    },
    /// List or check the price and target catalog.
    Catalog {
        #[arg(default_value = "list")]
        action: String,
    },
    /// Dependency swaps: `list [APP]`, `apply PROFILE FROM TO`.
    Swaps { action: String, args: Vec<String> },
    /// Deployment profiles.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// Write the native configuration of a target into a folder.
    Generate {
        /// app.yaml, compose file, manifests folder or profile name.
        app: String,
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        out: PathBuf,
        /// Replace the contents of a non-empty output folder.
        #[arg(long)]
        force: bool,
        /// Users the placement (node size and count, replicas) is sized for
        /// (default: the profile's, else the app's expected users).
        #[arg(long)]
        users: Option<u32>,
        /// Deploy strategy whose headroom the nodes carry (default: the
        /// profile's, else rolling).
        #[arg(long)]
        strategy: Option<String>,
        /// Run these services on another target, the rest on `--target`:
        /// `--split web=vercel` (repeatable; `a,b=TARGET` moves several).
        #[arg(long = "split", value_name = "SERVICES=TARGET")]
        split: Vec<String>,
    },
    /// Write the v0.1 deployment manifest of a profile.
    Manifest {
        profile: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Check a profile (or a manifest file) for schema and meaning.
    Validate {
        /// Profile name or id, or a manifest JSON file.
        what: String,
        #[arg(long)]
        verbose: bool,
        /// Env file whose variable names count as provided secrets.
        #[arg(long)]
        env_file: Option<PathBuf>,
    },
    /// Deploy a profile with zero downtime (Docker hosts, Swarm or Kubernetes).
    Deploy(Box<deploy::DeployArgs>),
    /// Release history of a profile.
    Releases { profile: String },
    /// Return to an earlier release (the previous one by default).
    Rollback(deploy::RollbackArgs),
    /// Send all traffic to a canary that paused for a human.
    Promote(targets::HostArgs),
    /// Containers, health, restarts, CPU, memory and traffic of a profile.
    Status(targets::HostArgs),
    /// Logs of a profile's live containers.
    Logs(deploy::LogsArgs),
    /// Stop every container of a profile (volumes and history stay).
    Stop(targets::HostArgs),
    /// Remove every container of a profile; volumes too with --volumes.
    Destroy(targets::DestroyArgs),
    /// Hold new requests (maintenance window) until `resume`.
    Pause(deploy::PauseArgs),
    /// Let held requests through again.
    Resume(targets::HostArgs),
    /// Check health and error rate on an interval; alert on changes.
    Monitor(deploy::MonitorArgs),
    /// Move a profile to another target along its growth path: configs,
    /// data and cut-over, printed first and done on confirmation.
    Migrate(migrate::MigrateArgs),
    /// The traffic proxy (runs inside its container).
    #[command(subcommand)]
    Proxy(deploy::ProxyCmd),
    /// A self-contained report (HTML, or Markdown with SVG files beside it):
    /// fitness matrix, cost charts, growth path, recommendation, checklist.
    Report {
        /// app.yaml, compose file, manifests folder or profile name.
        app: String,
        #[arg(short, long, default_value = "report.html")]
        output: PathBuf,
        /// Target for the files and checklist (default: the profile's, else
        /// the small-team recommendation).
        #[arg(long)]
        target: Option<String>,
        /// Users for the bar chart (default: the app's expected users).
        #[arg(long)]
        users: Option<u32>,
        /// Overwrite existing files.
        #[arg(long)]
        force: bool,
    },
    /// The local web dashboard and its JSON API.
    Serve {
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: std::net::SocketAddr,
        /// Read the access token from this file instead of generating one.
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Allow a non-loopback address without TLS.
        #[arg(long)]
        insecure: bool,
    },
    /// Secrets the app needs, as a template (never values).
    Secrets {
        action: String,
        profile: String,
        #[arg(long, default_value = "env")]
        format: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum ProfileCmd {
    Create {
        name: String,
        app: PathBuf,
        #[arg(long, default_value = "4")]
        tier: String,
    },
    List,
    Show {
        profile: String,
    },
    Set {
        profile: String,
        key: String,
        value: String,
    },
    Delete {
        profile: String,
    },
    Versions {
        profile: String,
    },
    Diff {
        profile: String,
        #[arg(long)]
        from: Option<u32>,
        #[arg(long)]
        to: Option<u32>,
    },
    Rollback {
        profile: String,
        #[arg(long)]
        version: u32,
    },
    Export {
        profile: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    Import {
        file: PathBuf,
        #[arg(long)]
        name: Option<String>,
    },
}

/// Exit codes, in one place (also in `--help`).
pub const EXIT_CODES: &str = "Exit codes: 0 ok; 1 an operation failed (a release that was rolled back, a platform that refused, a profile locked by another run) or blockers found where --fail-on-blockers asked; 2 bad input (spec errors with file, line and column); 3 the state database could not be read or written.";

/// The exit code of a failed deploy, rollback or promote.
pub fn exit_code(kind: crate::deploy::release::FailureKind) -> i32 {
    use crate::deploy::release::FailureKind as K;
    match kind {
        K::Input => 2,
        K::Storage => 3,
        K::Locked | K::Unhealthy | K::Engine => 1,
    }
}

/// A failure with its exit code (see [`EXIT_CODES`]).
pub struct Failure {
    pub code: i32,
    pub spec: Option<Box<SpecError>>,
    pub message: String,
    /// Already printed with its details; `main` only sets the exit code.
    pub shown: bool,
}

impl Failure {
    /// An operation that ran and failed (exit 1); `main` prints why.
    pub fn failed(msg: impl Into<String>) -> Self {
        Failure {
            code: 1,
            spec: None,
            message: msg.into(),
            shown: false,
        }
    }

    /// An operation that failed (exit 1) and has already said why.
    pub fn explained(msg: impl Into<String>) -> Self {
        Failure {
            shown: true,
            ..Failure::failed(msg)
        }
    }

    pub(crate) fn input(msg: impl Into<String>) -> Self {
        Failure {
            code: 2,
            spec: None,
            message: msg.into(),
            shown: false,
        }
    }
}

impl From<Box<SpecError>> for Failure {
    fn from(e: Box<SpecError>) -> Self {
        Failure {
            code: 2,
            message: e.to_string(),
            spec: Some(e),
            shown: false,
        }
    }
}

impl From<state::StateError> for Failure {
    fn from(e: state::StateError) -> Self {
        let code = if e.is_storage() { 3 } else { 2 };
        Failure {
            code,
            ..Failure::input(e.to_string())
        }
    }
}

type Res = Result<(), Failure>;

/// A file the user named: a regular file, bounded in size.
fn read_user_file(path: &Path, limit: u64) -> Result<String, Failure> {
    crate::describe::files::read_text(path, limit)
        .map_err(|e| Failure::input(format!("cannot read {}: {e}", path.display())))
}

pub(crate) struct Ctx {
    pub(crate) json: bool,
    pub(crate) session: crate::session::Session,
    pub(crate) compose_profiles: Vec<String>,
}

impl Ctx {
    pub(crate) fn store(&self) -> Result<Store, Failure> {
        Ok(self.session.store()?)
    }

    /// A path (app.yaml, compose, manifests) or a profile name; a profile's
    /// swaps are applied to its copy of the app.
    pub(crate) fn load_app(
        &self,
        key: &str,
    ) -> Result<(App, Option<state::Profile>, describe::findings::Findings), Failure> {
        let path = Path::new(key);
        if path.exists() {
            let l = describe::load_path(path, &self.compose_profiles)?;
            return Ok((l.app, None, l.findings));
        }
        let store = self.store()?;
        match store.find(key)? {
            Some(p) => {
                let app = swaps::effective(&p).map_err(Failure::input)?;
                Ok((app, Some(p), Default::default()))
            }
            None => Err(Failure::input(format!(
                "`{key}` is neither a file or folder nor a profile name"
            ))),
        }
    }

    pub(crate) fn engine(&self) -> Engine<'_> {
        self.session.fitness()
    }
}

pub fn run(cli: Cli) -> Res {
    let catalog = Catalog::with_overrides(cli.catalog.as_deref())
        .map_err(|e| Failure::input(e.to_string()))?;
    let rules = match &cli.rules {
        Some(p) => {
            let text = read_user_file(p, crate::describe::files::MAX_SPEC_FILE)?;
            fitness::rules::parse_rules(&p.display().to_string(), &text)?
        }
        None => Vec::new(),
    };
    let ctx = Ctx {
        json: cli.json,
        session: crate::session::Session::new(
            catalog,
            rules,
            cli.state.clone().unwrap_or_else(state::default_path),
        ),
        compose_profiles: cli.compose_profiles.clone(),
    };
    match cli.command {
        Command::Schema { which } => schema(&which),
        Command::Import {
            path,
            output,
            force,
        } => import(&ctx, &path, output.as_deref(), force),
        Command::Fitness {
            app,
            split,
            target: Some(target),
            fail_on_blockers,
            ..
        } if !split.is_empty() => split::fitness_cmd(&ctx, &app, &target, &split, fail_on_blockers),
        Command::Fitness {
            app,
            tier,
            target,
            fail_on_blockers,
            split,
        } => {
            if !split.is_empty() {
                return Err(Failure::input(
                    "--split needs --target (the rest of the app's target)",
                ));
            }
            fitness_cmd(
                &ctx,
                &app,
                tier.as_deref(),
                target.as_deref(),
                fail_on_blockers,
            )
        }
        Command::EstimateCost {
            app,
            target,
            users,
            strategy,
            verbose,
            split,
        } if !split.is_empty() => split::estimate_cmd(
            &ctx,
            &app,
            target.as_deref(),
            &split,
            users,
            &strategy,
            verbose,
        ),
        Command::EstimateCost {
            app,
            target,
            users,
            strategy,
            verbose,
            ..
        } => estimate_cmd(&ctx, &app, target.as_deref(), users, &strategy, verbose),
        Command::Plan {
            app,
            users,
            strategy,
        } => plan_cmd(&ctx, &app, users, &strategy),
        Command::Catalog { action } => catalog_cmd(&ctx, &action),
        Command::Swaps { action, args } => swaps_cmd(&ctx, &action, &args),
        Command::Profile(p) => profile_cmd(&ctx, p),
        Command::Secrets {
            action,
            profile,
            format,
        } => secrets_cmd(&ctx, &action, &profile, &format),
        Command::Generate {
            app,
            target,
            out,
            force,
            users,
            strategy,
            split,
        } => generate_cmd(
            &ctx,
            &app,
            target.as_deref(),
            &out,
            force,
            (users, strategy.as_deref()),
            &split,
        ),
        Command::Manifest { profile, output } => manifest_cmd(&ctx, &profile, output.as_deref()),
        Command::Validate {
            what,
            verbose,
            env_file,
        } => validate_cmd(&ctx, &what, verbose, env_file.as_deref()),
        Command::Deploy(a) => deploy::deploy_cmd(&ctx, *a),
        Command::Report {
            app,
            output,
            target,
            users,
            force,
        } => report_cmd(&ctx, &app, &output, target.as_deref(), users, force),
        Command::Serve {
            addr,
            token_file,
            insecure,
        } => serve_cmd(ctx, addr, token_file.as_deref(), insecure),
        Command::Releases { profile } => deploy::releases_cmd(&ctx, &profile),
        Command::Rollback(a) => deploy::rollback_cmd(&ctx, a),
        Command::Promote(a) => deploy::promote_cmd(&ctx, a),
        Command::Status(a) => deploy::status_cmd(&ctx, a),
        Command::Logs(a) => deploy::logs_cmd(&ctx, a),
        Command::Stop(a) => deploy::stop_cmd(&ctx, a),
        Command::Destroy(a) => deploy::destroy_cmd(&ctx, a),
        Command::Pause(a) => deploy::pause_cmd(&ctx, &a.target, true, Some(a.max)),
        Command::Resume(a) => deploy::pause_cmd(&ctx, &a, false, None),
        Command::Monitor(a) => deploy::monitor_cmd(&ctx, a),
        Command::Migrate(a) => migrate::migrate_cmd(&ctx, a),
        Command::Proxy(c) => deploy::proxy_cmd(c),
    }
}

fn schema(which: &str) -> Res {
    match which {
        "app" => {
            let s = schemars::schema_for!(App);
            json(&s);
            Ok(())
        }
        "manifest" => {
            json(&schemars::schema_for!(crate::manifest::Manifest));
            Ok(())
        }
        other => Err(Failure::input(format!(
            "unknown schema `{other}`; available: app, manifest"
        ))),
    }
}

/// Writes a file atomically: a temporary file beside it, then a rename.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn import(ctx: &Ctx, path: &Path, output: Option<&Path>, force: bool) -> Res {
    let loaded = describe::load_path(path, &ctx.compose_profiles)?;
    let header = format!(
        "# app.yaml imported by deployment-manager {} from {}\n",
        env!("CARGO_PKG_VERSION"),
        path.display()
    );
    let yaml = serde_saphyr::to_string(&loaded.app).map_err(|e| Failure::input(e.to_string()))?;
    let text = format!("{header}{yaml}");
    // The output must read back as a valid app description.
    describe::load::parse_app("<generated>", &text).map_err(|e| {
        Failure::input(format!(
            "internal error: import produced an invalid app.yaml: {e}"
        ))
    })?;
    if let Some(out) = output {
        if out.exists() && !force {
            return Err(Failure::input(format!(
                "{} exists; pass --force to overwrite",
                out.display()
            )));
        }
        write_atomic(out, &text)
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", out.display())))?;
    }
    if ctx.json {
        json(
            &serde_json::json!({"source": loaded.source, "app": loaded.app, "findings": loaded.findings, "written": output}),
        );
        return Ok(());
    }
    if output.is_none() {
        print!("{text}");
    } else {
        println!(
            "wrote {}",
            output.map(|o| o.display().to_string()).unwrap_or_default()
        );
    }
    print_findings(&loaded.findings);
    Ok(())
}

fn print_findings(f: &describe::findings::Findings) {
    use describe::findings::Severity;
    if f.0.is_empty() {
        return;
    }
    eprintln!(
        "\n{} error(s), {} warning(s), {} info",
        f.count(Severity::Error),
        f.count(Severity::Warning),
        f.count(Severity::Info)
    );
    let mut t = table(&["severity", "key", "what happened", "per target"]);
    for x in &f.0 {
        let per: Vec<String> = x
            .per_target
            .iter()
            .filter(|(_, s)| **s != x.severity || x.per_target.values().any(|v| *v != x.severity))
            .map(|(k, s)| format!("{k}:{s}"))
            .collect();
        t.add_row(vec![
            x.severity.to_string(),
            x.path.clone(),
            x.message.clone(),
            per.join(" "),
        ]);
    }
    eprintln!("{t}");
}

fn fitness_cmd(ctx: &Ctx, key: &str, tier: Option<&str>, target: Option<&str>, fail: bool) -> Res {
    let tier = tier.map(parse_tier).transpose().map_err(Failure::input)?;
    if let Some(t) = target
        && ctx.session.catalog.target(t).is_none()
    {
        let hint =
            describe::load::suggest(t, ctx.session.catalog.targets.iter().map(|x| x.id.as_str()));
        return Err(Failure::input(format!(
            "unknown target `{t}`{}",
            hint.map_or(String::new(), |h| format!("; did you mean `{h}`?"))
        )));
    }
    let (app, _, _) = ctx.load_app(key)?;
    let mut report = ctx.engine().report(&app, tier, target);
    if target.is_some() && tier.is_none() {
        report.tiers.clear();
    }
    // Fail on what was asked about: the target, else the tier(s).
    let asked = if target.is_some() {
        &report.targets
    } else {
        &report.tiers
    };
    let blocked = asked.iter().any(|a| a.status == Status::Blocked);
    if ctx.json {
        json(&report);
    } else {
        println!("Fitness of {}", paint(&report.app, "1"));
        let mut t = table(&[
            "tier / target",
            "score",
            "port.",
            "res.",
            "lic.",
            "platform",
            "verdict",
            "ops",
            "difficulty",
            "security",
            "production",
            "blockers",
            "warnings",
        ]);
        for a in report.tiers.iter().chain(report.targets.iter()) {
            let ops = a.operations.as_ref();
            t.add_row(vec![
                a.name.clone(),
                score_cell(a.score.overall, a.status == Status::Blocked),
                a.score.portability.to_string(),
                a.score.resources.to_string(),
                a.score.licensing.to_string(),
                a.score.platform_support.to_string(),
                a.verdict.clone(),
                ops.map_or("-".into(), |o| o.score.to_string()),
                ops.map_or("-", |o| o.difficulty.as_str()).to_string(),
                ops.map_or("-", |o| o.security.as_str()).to_string(),
                ops.map_or("-", |o| o.production_ready.short()).to_string(),
                a.blockers.len().to_string(),
                a.warnings.len().to_string(),
            ]);
        }
        println!("{t}");
        for a in report.tiers.iter().chain(report.targets.iter()) {
            if a.blockers.is_empty() && a.warnings.is_empty() {
                continue;
            }
            println!("\n{} — {}", paint(&a.name, "1"), a.verdict);
            print_assessment_findings(a);
        }
    }
    if fail && blocked {
        return Err(Failure::explained("blockers found"));
    }
    Ok(())
}

/// An assessment's blockers and warnings, each with its remedy and swaps.
pub(crate) fn print_assessment_findings(a: &fitness::Assessment) {
    for f in a.blockers.iter().chain(a.warnings.iter()) {
        let tag = if f.effect == fitness::rules::Effect::Blocker {
            paint("blocker", "31")
        } else {
            format!("{:+} {}", f.points, f.subscore)
        };
        println!("  [{tag}] {}", f.message);
        if let Some(r) = &f.remedy {
            println!("      remedy: {r}");
        }
        for s in &f.swaps {
            println!(
                "      swap: {} → {} ({}, effort {}, +{})",
                s.from, s.to, s.relationship, s.effort, s.score_effect
            );
        }
    }
}

fn estimate_cmd(
    ctx: &Ctx,
    key: &str,
    target: Option<&str>,
    users: Option<u32>,
    strategy: &str,
    verbose: bool,
) -> Res {
    let strategy: Strategy = strategy.parse().map_err(Failure::input)?;
    let (app, profile, _) = ctx.load_app(key)?;
    let settings = profile.as_ref().map(|p| &p.settings);
    let target_id = target
        .map(String::from)
        .or_else(|| settings.and_then(|s| s.target.clone()))
        .or_else(|| {
            settings
                .and_then(|s| s.provider.as_deref())
                .map(provider_target)
        });
    let users = users
        .or_else(|| settings.and_then(|s| s.users))
        .unwrap_or_else(|| app.users());
    let targets: Vec<_> = match &target_id {
        Some(t) => vec![
            ctx.session
                .catalog
                .target(t)
                .ok_or_else(|| Failure::input(format!("unknown target `{t}`")))?,
        ],
        None => ctx.session.catalog.targets.iter().collect(),
    };
    let estimates: Vec<_> = targets
        .iter()
        .map(|t| cost::estimate(&ctx.session.catalog, &app, t, users, strategy))
        .collect();
    if ctx.json {
        if estimates.len() == 1 {
            let mut v = serde_json::to_value(&estimates[0]).unwrap_or_default();
            if let Some(p) = &profile {
                v["profile_id"] = serde_json::json!(p.id);
            }
            json(&v);
        } else {
            json(&estimates);
        }
        return Ok(());
    }
    if estimates.len() > 1 {
        let mut t = table(&[
            "target",
            "compute",
            "database",
            "cache",
            "storage",
            "bandwidth",
            "other",
            "total",
        ]);
        for e in &estimates {
            let g = |k: &str| e.monthly_estimate.get(k).copied().unwrap_or(0.0);
            let other = g("load_balancer") + g("control_plane") + g("platform") + g("other");
            // A column with an unpriced line is a lower bound, not $0.00.
            let cell = |keys: &[&str], amount: f64| {
                let unpriced = e
                    .lines
                    .iter()
                    .any(|l| l.price_not_found && keys.contains(&l.category));
                if unpriced {
                    format!("≥ {}", money(amount))
                } else {
                    money(amount)
                }
            };
            let flag = if e.incomplete {
                " *"
            } else if e.uses_unconfirmed_prices {
                " ?"
            } else {
                ""
            };
            t.add_row(vec![
                e.target_name.clone(),
                cell(&["compute"], g("compute")),
                cell(&["database"], g("database")),
                cell(&["cache"], g("cache")),
                cell(&["storage"], g("storage")),
                cell(&["bandwidth"], g("bandwidth")),
                cell(
                    &["load_balancer", "control_plane", "platform", "other"],
                    other,
                ),
                format!("{}{flag}", total_of(e)),
            ]);
        }
        println!(
            "Monthly cost of {} at {users} users ({strategy:?})\n{t}\n≥ … * some lines not priced (the total is a lower bound)   ? uses UNCONFIRMED prices",
            app.name
        );
        return Ok(());
    }
    print_estimate(&app.name, &estimates[0], verbose);
    Ok(())
}

/// One estimate as a table, with its notes (and with `verbose`, the
/// sizing and the assumptions).
pub(crate) fn print_estimate(app_name: &str, e: &crate::analyse::cost::Estimate, verbose: bool) {
    let unpriced = e.lines.iter().filter(|l| l.price_not_found).count();
    println!(
        "{} on {} at {} users: {} / month{}",
        app_name,
        e.target_name,
        e.users,
        paint(&total_of(e), "1"),
        match unpriced {
            0 => String::new(),
            n => format!(" ({n} line(s) not priced: the total is a lower bound)"),
        }
    );
    let mut t = table(&[
        "category",
        "item",
        "quantity",
        "unit",
        "unit price",
        "monthly",
        "source",
    ]);
    for l in &e.lines {
        let mark = format!(
            "{}{}{}",
            if l.usage_based { "*" } else { "" },
            if l.unconfirmed { " UNCONFIRMED" } else { "" },
            if l.stale { " STALE" } else { "" },
        );
        t.add_row(vec![
            l.category.to_string(),
            format!("{}{mark}", l.name),
            format!("{}", l.quantity),
            l.unit.to_string(),
            l.unit_price.map_or("—".into(), |p| format!("{p}")),
            // An unpriced line is not free: say so, with the reason.
            if l.price_not_found {
                format!(
                    "not priced: {}",
                    l.note.clone().unwrap_or_else(|| format!(
                        "no price `{}` in the catalog",
                        l.price_id.as_deref().unwrap_or("?")
                    ))
                )
            } else {
                money(l.monthly)
            },
            if verbose {
                format!(
                    "{} ({})",
                    l.source.clone().unwrap_or_default(),
                    l.captured.clone().unwrap_or_default()
                )
            } else {
                l.captured.clone().unwrap_or_default()
            },
        ]);
    }
    println!("{t}");
    println!("* usage-based");
    if e.uses_stale_prices {
        println!(
            "STALE: the price was read more than {} days ago (see `catalog check`)",
            crate::catalog::STALE_AFTER_DAYS
        );
    }
    if verbose {
        for l in e.lines.iter().filter(|l| l.note.is_some()) {
            println!("line `{}`: {}", l.name, l.note.as_deref().unwrap_or(""));
        }
        for s in &e.sizing {
            println!("sizing: {s}");
        }
        for a in &e.assumptions {
            println!("assumption: {a}");
        }
    }
    for n in &e.notes {
        println!("note: {n}");
    }
}

/// A total, as a lower bound (`≥ $x`) when some line could not be priced.
pub(crate) fn total_of(e: &crate::analyse::cost::Estimate) -> String {
    if e.incomplete {
        format!("≥ {}", money(e.total))
    } else {
        money(e.total)
    }
}

/// The VM target of a provider named in a profile (`provider digitalocean`).
fn provider_target(provider: &str) -> String {
    match provider {
        "aws" | "ec2" => "vm-aws-ec2".into(),
        "gcp" | "google" => "vm-gcp".into(),
        "fly" | "fly.io" | "render" | "railway" | "heroku" | "vercel" => {
            provider.trim_end_matches(".io").into()
        }
        p => format!("vm-{p}"),
    }
}

fn plan_cmd(ctx: &Ctx, key: &str, users: Option<Vec<u32>>, strategy: &str) -> Res {
    let strategy: Strategy = strategy.parse().map_err(Failure::input)?;
    let (app, _, _) = ctx.load_app(key)?;
    let levels = users.unwrap_or_else(|| plan::DEFAULT_LEVELS.to_vec());
    if levels.is_empty() || levels.contains(&0) {
        return Err(Failure::input(
            "--users needs one or more positive numbers, e.g. 2,10,50",
        ));
    }
    let engine = ctx.engine();
    let p = plan::plan(&engine, &app, &levels, strategy);
    if ctx.json {
        json(&p);
        return Ok(());
    }
    let mut headers = vec![
        "target".to_string(),
        "fitness".into(),
        "ops".into(),
        "verdict".into(),
    ];
    headers.extend(levels.iter().map(|u| format!("{u} users")));
    let hs: Vec<&str> = headers.iter().map(String::as_str).collect();
    let mut t = table(&hs);
    for r in &p.rows {
        let mut row = vec![
            r.name.clone(),
            score_cell(r.fitness, r.status == Status::Blocked),
            r.operations.map_or("-".into(), |o| o.to_string()),
            r.verdict.clone(),
        ];
        for (i, m) in r.monthly.iter().enumerate() {
            let cheapest =
                p.growth_path.get(i).and_then(|s| s.target.as_deref()) == Some(r.target.as_str());
            let cell = format!("{}{}", money(*m), if r.incomplete[i] { " *" } else { "" });
            row.push(if r.status == Status::Blocked {
                paint(&cell, "2")
            } else if cheapest {
                paint(&format!("{cell} ◀"), "32")
            } else {
                cell
            });
        }
        t.add_row(row);
    }
    println!(
        "Plan for {} ({strategy:?} deploys)\n{t}\n◀ cheapest fitting target   * some lines unpriced   ops: share of the operating work the target does (0–100)",
        app.name
    );
    println!("\nGrowth path:");
    for s in &p.growth_path {
        println!(
            "  {:>5} users → {} {}{}{}",
            s.users,
            s.target.clone().unwrap_or_else(|| "none".into()),
            s.monthly
                .map_or(String::new(), |m| format!("({})", money(m))),
            s.layout
                .as_ref()
                .map_or(String::new(), |l| format!(": {l}")),
            s.capped_monthly.map_or(String::new(), |c| format!(
                "; {} with today's caps",
                money(c)
            ))
        );
    }
    if let Some(sp) = &p.split {
        println!(
            "\nSplit: {} on a web platform of its own, {} elsewhere (the cheapest of each):",
            sp.front.join(", "),
            sp.rest.join(", ")
        );
        for (i, u) in p.levels.iter().enumerate() {
            let whole = p.growth_path.get(i).and_then(|s| s.monthly);
            match sp.pick(i, &|_| true, false) {
                Some(c) => println!(
                    "  {u:>5} users → {} = {}{}",
                    c.describe(),
                    money(c.monthly),
                    whole.map_or(String::new(), |w| format!(" (whole app: {})", money(w)))
                ),
                None => println!("  {u:>5} users → no fitting split"),
            }
        }
        for c in &sp.crossings {
            println!("  crossing: {}", c.describe());
        }
    }
    if !p.warnings.is_empty() {
        println!("\nCapacity:");
        for w in &p.warnings {
            println!("  {} {w}", paint("warning:", "33"));
        }
    }
    println!("\nRecommendations:");
    for r in &p.recommendations {
        println!(
            "  {}: {} {}",
            paint(r.use_case, "1"),
            r.placed_on(),
            r.monthly.map_or(String::new(), |m| format!(
                "({} at {} users)",
                money(m),
                r.users
            ))
        );
        for why in &r.reasons {
            println!("      - {why}");
        }
    }
    Ok(())
}

fn catalog_cmd(ctx: &Ctx, action: &str) -> Res {
    match action {
        "list" | "prices" => {
            if ctx.json {
                json(&ctx.session.catalog.prices);
                return Ok(());
            }
            let mut t = table(&["id", "item", "unit", "USD", "captured", "backing", "source"]);
            for p in &ctx.session.catalog.prices {
                t.add_row(vec![
                    p.id.clone(),
                    p.item.clone(),
                    p.unit.to_string(),
                    p.usd.map_or("—".into(), |u| format!("{u}")),
                    p.captured.clone(),
                    p.backing.clone(),
                    p.source.clone(),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        "targets" => {
            if ctx.json {
                json(&ctx.session.catalog.targets);
                return Ok(());
            }
            let mut t = table(&[
                "id",
                "name",
                "family",
                "websockets",
                "volumes",
                "max request s",
                "docker daemon",
                "k8s jobs",
                "gpus",
            ]);
            for x in &ctx.session.catalog.targets {
                let s = |k: &str| format!("{:?}", x.support(k)).to_lowercase();
                t.add_row(vec![
                    x.id.clone(),
                    x.name.clone(),
                    x.family.clone(),
                    s("websockets"),
                    s("volumes"),
                    x.number("max_request_seconds")
                        .map_or("none".into(), |n| n.to_string()),
                    s("docker_daemon"),
                    s("k8s_jobs"),
                    s("gpus"),
                ]);
            }
            println!("{t}");
            Ok(())
        }
        "check" => {
            let issues = ctx.session.catalog.check(crate::catalog::today());
            let errors = issues.iter().filter(|i| i.severity == "error").count();
            if ctx.json {
                json(&issues);
            } else {
                let mut t = table(&["id", "severity", "issue"]);
                for i in &issues {
                    t.add_row(vec![
                        i.id.clone(),
                        i.severity.to_string(),
                        i.message.clone(),
                    ]);
                }
                println!(
                    "{t}\n{} prices, {} targets: {errors} error(s), {} warning(s)",
                    ctx.session.catalog.prices.len(),
                    ctx.session.catalog.targets.len(),
                    issues.iter().filter(|i| i.severity == "warning").count()
                );
            }
            if errors > 0 {
                return Err(Failure::input(format!("{errors} catalog error(s)")));
            }
            Ok(())
        }
        other => Err(Failure::input(format!(
            "unknown catalog action `{other}`; use list, targets or check"
        ))),
    }
}

fn print_swaps(ctx: &Ctx, list: Vec<&swaps::Swap>) {
    if ctx.json {
        json(&list);
        return;
    }
    let mut t = table(&[
        "from",
        "to",
        "relationship",
        "tiers",
        "effect",
        "effort",
        "pros",
        "cons",
    ]);
    for s in list {
        t.add_row(vec![
            s.from.clone(),
            s.to.clone(),
            s.relationship.clone(),
            s.tiers.join(","),
            format!("+{}", s.score_effect),
            s.effort.clone(),
            s.pros.join("; "),
            s.cons.join("; "),
        ]);
    }
    println!("{t}");
}

fn swaps_cmd(ctx: &Ctx, action: &str, args: &[String]) -> Res {
    match (action, args) {
        ("list", []) => {
            print_swaps(ctx, swaps::registry().iter().collect());
            Ok(())
        }
        ("list", [app]) => {
            let (app, _, _) = ctx.load_app(app)?;
            print_swaps(
                ctx,
                app.dependencies
                    .values()
                    .flat_map(|d| swaps::swaps_for(&d.kind, None))
                    .collect(),
            );
            Ok(())
        }
        ("apply", [profile, from, to]) => {
            let mut store = ctx.store()?;
            let mut p = store.get(profile)?;
            let applied = swaps::AppliedSwap {
                from: from.clone(),
                to: to.clone(),
                dependency: None,
            };
            let mut all = p.swaps.clone();
            all.push(applied.clone());
            let swapped = swaps::apply(&p.app, &all).map_err(Failure::input)?;
            let engine = ctx.engine();
            let tier = fitness::TIERS[(p.tier as usize).clamp(1, 5) - 1];
            let before = engine.report(
                &swaps::effective(&p).map_err(Failure::input)?,
                Some(tier),
                None,
            );
            let after = engine.report(&swapped, Some(tier), None);
            p.swaps = all;
            let p = store.update(p, &format!("swap {from} → {to}"))?;
            let (b, a) = (before.tiers[0].score.overall, after.tiers[0].score.overall);
            if ctx.json {
                json(
                    &serde_json::json!({"profile": p.name, "version": p.version, "swap": applied, "tier": tier.key, "fitness_before": b, "fitness_after": a, "blockers_after": after.tiers[0].blockers.len()}),
                );
            } else {
                println!(
                    "applied {from} → {to} to profile {} (version {}); tier {} fitness {b} → {a}",
                    p.name, p.version, tier.key
                );
            }
            Ok(())
        }
        _ => Err(Failure::input(
            "usage: swaps list [APP] | swaps apply PROFILE FROM TO",
        )),
    }
}

fn profile_cmd(ctx: &Ctx, cmd: ProfileCmd) -> Res {
    let mut store = ctx.store()?;
    match cmd {
        ProfileCmd::Create { name, app, tier } => {
            let tier = parse_tier(&tier).map_err(Failure::input)?;
            state::check_profile_name(&name)?;
            let loaded = describe::load_path(&app, &ctx.compose_profiles)?;
            let p = store.create(&name, tier.number, &app.display().to_string(), loaded.app)?;
            if ctx.json {
                json(&p)
            } else {
                println!(
                    "created profile {} ({}) for app {} at tier {}",
                    p.name, p.id, p.app.name, tier.key
                )
            }
        }
        ProfileCmd::List => {
            let list = store.list()?;
            if ctx.json {
                json(&list);
            } else {
                let mut t = table(&["id", "name", "app", "tier", "swaps", "settings", "version"]);
                for p in list {
                    t.add_row(vec![
                        p.id,
                        p.name,
                        p.app.name,
                        p.tier.to_string(),
                        p.swaps.len().to_string(),
                        p.settings.keys().join(","),
                        p.version.to_string(),
                    ]);
                }
                println!("{t}");
            }
        }
        ProfileCmd::Show { profile } => {
            let p = store.get(&profile)?;
            if ctx.json {
                json(&p)
            } else {
                println!("{}", serde_saphyr::to_string(&p).unwrap_or_default())
            }
        }
        ProfileCmd::Set {
            profile,
            key,
            value,
        } => {
            let mut p = store.get(&profile)?;
            match key.as_str() {
                "tier" => p.tier = parse_tier(&value).map_err(Failure::input)?.number,
                "name" => p.name = value.clone(),
                _ => p
                    .settings
                    .set(&ctx.session.catalog, &key, &value)
                    .map_err(Failure::input)?,
            }
            let p = store.update(p, &format!("set {key}"))?;
            if ctx.json {
                json(&p)
            } else {
                println!("{}: {key} = {value} (version {})", p.name, p.version)
            }
        }
        ProfileCmd::Delete { profile } => {
            store.delete(&profile)?;
            if ctx.json {
                json(&serde_json::json!({"deleted": profile}))
            } else {
                println!("deleted {profile}")
            }
        }
        ProfileCmd::Versions { profile } => {
            let v = store.versions(&profile)?;
            if ctx.json {
                json(
                    &v.iter()
                        .map(|(n, c, t)| serde_json::json!({"version": n, "change": c, "at": t}))
                        .collect::<Vec<_>>(),
                );
            } else {
                let mut t = table(&["version", "change", "at"]);
                for (n, c, at) in v {
                    t.add_row(vec![n.to_string(), c, at]);
                }
                println!("{t}");
            }
        }
        ProfileCmd::Diff { profile, from, to } => {
            let cur = store.get(&profile)?;
            let to = to.unwrap_or(cur.version);
            let from = from.unwrap_or(to.saturating_sub(1).max(1));
            let d = state::diff(
                &store.version(&profile, from)?,
                &store.version(&profile, to)?,
            );
            if ctx.json {
                json(&serde_json::json!({"from": from, "to": to, "changes": d}))
            } else {
                println!("{profile}: version {from} → {to}");
                for c in d {
                    println!("  {c}");
                }
            }
        }
        ProfileCmd::Rollback { profile, version } => {
            let p = store.rollback(&profile, version)?;
            if ctx.json {
                json(&p)
            } else {
                println!(
                    "{} rolled back to version {version} (now version {})",
                    p.name, p.version
                )
            }
        }
        ProfileCmd::Export { profile, output } => {
            let p = store.get(&profile)?;
            let text = serde_json::to_string_pretty(&p).unwrap_or_default();
            match output {
                Some(o) => write_atomic(&o, &text).map_err(|e| Failure::input(e.to_string()))?,
                None => println!("{text}"),
            }
        }
        ProfileCmd::Import { file, name } => {
            let text = read_user_file(&file, crate::describe::files::MAX_SPEC_FILE)?;
            let p: state::Profile = serde_json::from_str(&text).map_err(|e| {
                Failure::input(format!(
                    "{}:{}:{}: {e}",
                    file.display(),
                    e.line(),
                    e.column()
                ))
            })?;
            let app_text = serde_saphyr::to_string(&p.app).unwrap_or_default();
            describe::load::parse_app(&format!("{} (app)", file.display()), &app_text)?;
            let mut created = store.create(
                name.as_deref().unwrap_or(&p.name),
                p.tier,
                &p.app_source,
                p.app.clone(),
            )?;
            created.settings = p.settings;
            created.swaps = p.swaps;
            let created = store.update(created, "imported")?;
            if ctx.json {
                json(&created)
            } else {
                println!("imported profile {} ({})", created.name, created.id)
            }
        }
    }
    Ok(())
}

fn secrets_cmd(ctx: &Ctx, action: &str, profile: &str, format: &str) -> Res {
    if action != "template" {
        return Err(Failure::input(
            "usage: secrets template PROFILE --format env|vault|aws|k8s|docker|fly|github",
        ));
    }
    let (app, p, _) = ctx.load_app(profile)?;
    let list = crate::describe::secrets_list(&app);
    let pname = p.as_ref().map_or(app.name.clone(), |p| p.name.clone());
    let text = crate::describe::render_secrets_template(&list, &app.name, &pname, format)
        .map_err(Failure::input)?;
    if ctx.json {
        json(
            &serde_json::json!({"profile": pname, "format": format, "secrets": list, "template": text}),
        );
    } else {
        print!("{text}");
    }
    Ok(())
}

fn manifest_cmd(ctx: &Ctx, profile: &str, output: Option<&Path>) -> Res {
    let store = ctx.store()?;
    let p = store.get(profile)?;
    let target = p.settings.target_in(&ctx.session.catalog).ok_or_else(|| {
        Failure::input(format!(
            "profile `{}` has no target; run `profile set {} provider NAME` or `target ID`",
            p.name, p.name
        ))
    })?;
    let (m, e) =
        crate::manifest::build(&ctx.session.catalog, &p, target).map_err(Failure::input)?;
    let text = serde_json::to_string_pretty(&m).unwrap_or_default() + "\n";
    if let Some(o) = output {
        write_atomic(o, &text)
            .map_err(|err| Failure::input(format!("cannot write {}: {err}", o.display())))?;
        if !ctx.json {
            println!(
                "wrote {} ({} on {}, {}/month)",
                o.display(),
                m.app.name,
                target.name,
                money(e.total)
            );
            return Ok(());
        }
    }
    print!("{text}");
    Ok(())
}

/// Names of secrets available now: the environment plus an env file.
fn provided_secrets(
    env_file: Option<&Path>,
) -> Result<std::collections::HashMap<String, bool>, Failure> {
    let mut names: std::collections::HashMap<String, bool> =
        std::env::vars().map(|(k, v)| (k, !v.is_empty())).collect();
    if let Some(f) = env_file {
        let text = read_user_file(f, crate::describe::files::MAX_ENV_FILE)?;
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            if let Some((k, v)) = line.split_once('=') {
                names.insert(
                    k.trim().trim_start_matches("export ").to_string(),
                    !v.trim().is_empty(),
                );
            }
        }
    }
    Ok(names)
}

fn validate_cmd(ctx: &Ctx, what: &str, verbose: bool, env_file: Option<&Path>) -> Res {
    let path = Path::new(what);
    if path.is_file() {
        let text = read_user_file(path, crate::describe::files::MAX_SPEC_FILE)?;
        let m: crate::manifest::Manifest = serde_json::from_str(&text).map_err(|e| {
            let offset = text
                .lines()
                .take(e.line().saturating_sub(1))
                .map(|l| l.len() + 1)
                .sum::<usize>()
                + e.column().saturating_sub(1);
            Failure::from(Box::new(SpecError::at(
                what,
                &text,
                offset,
                1,
                e.to_string(),
            )))
        })?;
        let mut issues = Vec::new();
        if m.schema_version != crate::manifest::SCHEMA_VERSION {
            issues.push(format!(
                "schema_version: `{}` is not {}",
                m.schema_version,
                crate::manifest::SCHEMA_VERSION
            ));
        }
        if ctx.session.catalog.target(&m.platform).is_none() {
            issues.push(format!("platform: unknown target `{}`", m.platform));
        }
        if parse_tier(&m.target).is_err() {
            issues.push(format!("target: unknown tier `{}`", m.target));
        }
        if m.infrastructure.compute.count == 0 {
            issues.push("infrastructure.compute.count: must be at least 1".into());
        }
        if ctx.json {
            json(&serde_json::json!({"manifest": what, "ok": issues.is_empty(), "issues": issues}));
        } else if issues.is_empty() {
            println!(
                "{what}: valid v0.1 manifest for {} on {}",
                m.app.name, m.platform
            );
        } else {
            for i in &issues {
                println!("error: {i}");
            }
        }
        return if issues.is_empty() {
            Ok(())
        } else {
            Err(Failure::explained("invalid manifest"))
        };
    }
    let store = ctx.store()?;
    let p = store.get(what)?;
    let engine = ctx.engine();
    let v = crate::analyse::validate::validate(
        &ctx.session.catalog,
        &engine,
        &p,
        &provided_secrets(env_file)?,
    );
    if ctx.json {
        json(&v);
    } else {
        let mut t = table(&["check", "status", "issues"]);
        for c in &v.checks {
            let status = serde_json::to_value(c.status)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default();
            let code = match c.status {
                crate::analyse::validate::CheckStatus::Pass => "32",
                crate::analyse::validate::CheckStatus::Warn => "33",
                crate::analyse::validate::CheckStatus::Fail => "31",
                crate::analyse::validate::CheckStatus::NotRun => "35",
            };
            t.add_row(vec![
                c.id.to_string(),
                paint(&status, code),
                c.reason
                    .clone()
                    .unwrap_or_else(|| c.issues.len().to_string()),
            ]);
        }
        println!("{t}");
        for c in &v.checks {
            for i in c.issues.iter().filter(|i| verbose || i.severity != "info") {
                println!(
                    "[{}] {}: {}\n      hint: {}",
                    i.severity, i.path, i.message, i.hint
                );
            }
        }
        println!(
            "{} passed, {} failed, {} not run",
            v.passed, v.failed, v.not_run
        );
    }
    if v.ok {
        Ok(())
    } else {
        Err(Failure::explained("validation failed"))
    }
}

fn generate_cmd(
    ctx: &Ctx,
    key: &str,
    target: Option<&str>,
    out: &Path,
    force: bool,
    (users, strategy): (Option<u32>, Option<&str>),
    split: &[String],
) -> Res {
    use crate::render::{Options, RenderError, render_from, write_all};
    let (app, profile, _) = ctx.load_app(key)?;
    let asked: Option<Strategy> = strategy
        .map(str::parse)
        .transpose()
        .map_err(Failure::input)?;
    let settings = profile.as_ref().map(|p| &p.settings);
    let strategy = settings.map_or(asked.unwrap_or_default(), |s| s.strategy_or(asked));
    let users = users.or_else(|| settings.and_then(|s| s.users));
    let target = match target {
        Some(t) => t.to_string(),
        None => profile
            .as_ref()
            .and_then(|p| p.settings.target_in(&ctx.session.catalog))
            .map(|t| t.id.clone())
            .ok_or_else(|| {
                Failure::input("pass --target (or set a target or provider on the profile)")
            })?,
    };
    let base = match &profile {
        Some(p) => Path::new(&p.app_source).parent().map(Path::to_path_buf),
        None => Path::new(key).parent().map(Path::to_path_buf),
    };
    let routing = profile
        .as_ref()
        .map(|p| crate::manifest::profile_routing(p, &target));
    let options = Options {
        base: base.as_deref(),
        routing: routing.as_ref(),
        users,
        strategy,
    };
    let rendered = if split.is_empty() {
        render_from(&ctx.engine(), &app, &target, &options)
    } else {
        let parts = split::parse(&ctx.session.catalog, &app, &target, split)?;
        crate::render::split::render(&ctx.engine(), &app, &parts, &options)
    };
    let files = match rendered {
        Ok(f) => f,
        Err(RenderError::Blocked {
            app,
            target,
            blockers,
        }) => {
            if ctx.json {
                json(
                    &serde_json::json!({"error": "blocked", "app": app, "target": target, "blockers": blockers}),
                );
            } else {
                eprintln!("{target} cannot host {app}; nothing was written:");
                for b in &blockers {
                    eprintln!("  [blocker] {}", b.message);
                    if let Some(r) = &b.remedy {
                        eprintln!("      remedy: {r}");
                    }
                }
            }
            return Err(Failure::explained("blocked"));
        }
        Err(e) => return Err(Failure::input(e.to_string())),
    };
    write_all(out, &files, force).map_err(|e| Failure::input(e.to_string()))?;
    if ctx.json {
        json(
            &serde_json::json!({"target": target, "out": out, "files": files.iter().map(|f| &f.path).collect::<Vec<_>>()}),
        );
    } else {
        println!(
            "wrote {} file(s) for {target} into {}:",
            files.len(),
            out.display()
        );
        for f in &files {
            println!("  {}", f.path);
        }
    }
    Ok(())
}

fn report_cmd(
    ctx: &Ctx,
    key: &str,
    output: &Path,
    target: Option<&str>,
    users: Option<u32>,
    force: bool,
) -> Res {
    let (app, profile, _) = ctx.load_app(key)?;
    let chosen = target
        .map(String::from)
        .or_else(|| profile.as_ref().and_then(|p| p.settings.target.clone()));
    if let Some(t) = &chosen {
        ctx.session
            .catalog
            .target(t)
            .ok_or_else(|| Failure::input(format!("unknown target `{t}`")))?;
    }
    let engine = ctx.engine();
    let report = crate::report::build(&engine, &app, chosen.as_deref(), users);
    let files = crate::report::files(&report, output).map_err(Failure::input)?;
    // All or nothing: refuse before writing any file.
    if !force && let Some((p, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Failure::input(format!(
            "{} exists; pass --force to overwrite",
            p.display()
        )));
    }
    for (path, content) in &files {
        write_atomic(path, content)
            .map_err(|e| Failure::input(format!("cannot write {}: {e}", path.display())))?;
    }
    let written: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
    if ctx.json {
        json(&serde_json::json!({"written": written, "report": report}));
    } else {
        println!("wrote {}", written.join(", "));
    }
    Ok(())
}

fn serve_cmd(
    ctx: Ctx,
    addr: std::net::SocketAddr,
    token_file: Option<&Path>,
    insecure: bool,
) -> Res {
    crate::serve::check_addr(&addr, insecure).map_err(Failure::input)?;
    let token = match token_file {
        Some(f) => {
            let t = read_user_file(f, crate::describe::files::MAX_ENV_FILE)?
                .trim()
                .to_string();
            if t.len() < 16 {
                return Err(Failure::input("the token must be at least 16 characters"));
            }
            Some(t)
        }
        None => None,
    };
    let session = std::sync::Arc::new(ctx.session);
    session
        .clone()
        .block_on(crate::serve::run(crate::serve::Options {
            addr,
            session,
            token,
            insecure,
        }))
        .map_err(Failure::failed)?
        .map_err(Failure::failed)
}
