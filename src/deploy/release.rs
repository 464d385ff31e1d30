//! The release lifecycle, written once for every engine: lock, settle what
//! an earlier run left, skip a release that changes nothing, begin, roll
//! out by strategy, bake, then finish — or put the live release back — and
//! record every event with the release. Engines supply the moves through
//! [`Platform`]; adding an engine means implementing it, nothing copied.

use super::events::Progress;
use super::spec::{ReleaseSpec, ReleaseStep};
use super::strategy::Options;
use crate::state::Store;
use crate::state::releases::{NewRelease, Release, ReleaseStatus};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What kind of thing went wrong; the CLI maps it to an exit code in one
/// place (`cli::exit_code`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The request or the app cannot be deployed as given.
    Input,
    /// Another run holds the profile's deploy lock.
    Locked,
    /// The new release did not become, or stay, healthy.
    Unhealthy,
    /// The platform could not be reached or refused a call.
    Engine,
    /// The state database could not be read or written.
    Storage,
}

/// Why a release could not go live, with the failing container's last
/// log lines.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: FailureKind,
    pub why: String,
    pub container: Option<String>,
    pub logs: String,
}

impl Failure {
    pub fn new(kind: FailureKind, why: impl Into<String>) -> Failure {
        Failure {
            kind,
            why: why.into(),
            container: None,
            logs: String::new(),
        }
    }

    /// A replica, task or pod that did not become or stay healthy.
    pub fn unhealthy(why: impl Into<String>, container: Option<String>, logs: String) -> Failure {
        Failure {
            container,
            logs,
            ..Failure::new(FailureKind::Unhealthy, why)
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.why)?;
        match (&self.container, self.logs.trim_end()) {
            (Some(c), "") => write!(f, "\nno log lines could be read from {c}")?,
            (Some(c), logs) => write!(f, "\nlast log lines of {c}:\n{logs}")?,
            (None, _) => {}
        }
        Ok(())
    }
}

/// A bare message is an engine's.
impl From<String> for Failure {
    fn from(why: String) -> Self {
        Failure::new(FailureKind::Engine, why)
    }
}

impl From<crate::state::StateError> for Failure {
    fn from(e: crate::state::StateError) -> Self {
        let kind = if e.is_storage() {
            FailureKind::Storage
        } else {
            FailureKind::Input
        };
        Failure::new(kind, e.to_string())
    }
}

/// What a strategy run ended with.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Live,
    /// A canary stopped for a human: `promote` or `rollback` decides.
    Paused(String),
}

/// How a deploy, rollback or promote ended, as the fronts report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    /// The live release already runs this exact spec.
    Unchanged,
    Succeeded,
    /// A canary waits for `promote` or `rollback`.
    Paused,
    /// A dry run: what would happen.
    Planned,
}

impl std::fmt::Display for ReportStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReportStatus::Unchanged => "unchanged",
            ReportStatus::Succeeded => "succeeded",
            ReportStatus::Paused => "paused",
            ReportStatus::Planned => "planned",
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub release: Option<u32>,
    pub status: ReportStatus,
    pub message: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plan: Vec<PlanLine>,
}

impl Report {
    fn done(release: u32, status: ReportStatus, message: String) -> Report {
        Report {
            release: Some(release),
            status,
            message,
            plan: vec![],
        }
    }
}

/// One change a dry run would make.
#[derive(Debug, Serialize, Clone)]
pub struct PlanLine {
    pub host: String,
    pub action: String,
    pub kind: String,
    pub name: String,
    pub detail: String,
}

/// Why no logs came.
#[derive(Debug)]
pub enum LogsError {
    /// Nothing of the profile (or of that service) runs to read logs from.
    NothingMatches(String),
    /// The engine could not be reached or failed.
    Engine(String),
}

impl std::fmt::Display for LogsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogsError::NothingMatches(m) | LogsError::Engine(m) => f.write_str(m),
        }
    }
}

impl From<String> for LogsError {
    fn from(m: String) -> Self {
        LogsError::Engine(m)
    }
}

/// Who may deploy now: how long to wait for another run's lock, and
/// whether to break one held by a run that is not known to be dead.
#[derive(Clone, Debug, Default)]
pub struct LockRequest {
    /// The command line, recorded with the lock.
    pub command: String,
    pub wait: Duration,
    pub force: bool,
}

/// The image of every service, as recorded with a release.
pub fn images_json(spec: &ReleaseSpec) -> serde_json::Value {
    spec.services
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                serde_json::json!({"image": s.image, "id": s.image_id}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// What an engine does for the lifecycle. Every method acts on the
/// profile the engine was connected for.
// Engines run on the caller's task, so no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait Platform {
    fn profile(&self) -> &str;
    fn progress(&self) -> &Progress;
    fn options(&self) -> &Options;
    /// Where releases run, recorded with each (hosts, a manager, a context).
    fn places(&self) -> Vec<String>;
    /// How the release line names the platform, e.g. " on swarm".
    fn venue(&self) -> String {
        String::new()
    }
    /// Fills in what the spec needs from the platform: builds, images on
    /// every engine, image ids. Fails, changing nothing that serves, when
    /// the release cannot run there. A dry run only decides, and returns
    /// what it would do as plan lines.
    async fn prepare(
        &mut self,
        spec: &mut ReleaseSpec,
        dry_run: bool,
    ) -> Result<Vec<PlanLine>, Failure>;
    /// Takes the profile's deploy lock; returns a note when it broke one.
    async fn lock(&mut self, how: &LockRequest) -> Result<Option<String>, Failure>;
    async fn unlock(&self);
    /// Whether `live` serves alone, with all its replicas.
    async fn is_serving(&self, live: &Release) -> Result<bool, Failure>;
    /// Makes release `runs` (its spec) serve alone.
    async fn converge(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure>;
    /// Removes what unfinished runs (`stale` release numbers) created;
    /// returns what it did, in words.
    async fn remove_leftovers(
        &self,
        live: Option<&Release>,
        stale: &[u32],
    ) -> Result<Vec<String>, Failure>;
    /// Infrastructure, dependencies, then the strategy for every service.
    /// Runs the release command once, after the images exist and before
    /// any traffic moves; a summary of the run, or why it failed (with its
    /// logs).
    async fn run_release_step(
        &self,
        spec: &ReleaseSpec,
        step: &ReleaseStep,
        number: u32,
    ) -> Result<String, Failure>;
    async fn roll_out(&self, spec: &ReleaseSpec, number: u32) -> Result<Outcome, Failure>;
    /// Watches release `number` after cutover; fails when it goes bad.
    async fn bake(&self, spec: &ReleaseSpec, number: u32) -> Result<(), Failure>;
    /// After a failure: `live` serves alone again and nothing of release
    /// `failed` remains; says what it did.
    async fn restore(&self, live: Option<&Release>, failed: u32) -> Result<String, Failure>;
    /// After success: stops what no longer serves and removes releases
    /// beyond those kept for rollback. `history` is newest first.
    async fn cleanup(
        &self,
        history: &[Release],
        spec: &ReleaseSpec,
        number: u32,
        previous: Option<&Release>,
    ) -> Result<(), Failure>;
    /// Removes what only release `runs` uses (an aborted canary).
    async fn discard(&self, runs: u32) -> Result<(), Failure>;
    /// Sends all traffic to a paused canary `runs`.
    async fn promote(&self, spec: &ReleaseSpec, runs: u32) -> Result<(), Failure> {
        self.converge(spec, runs).await
    }
    /// What runs now, as JSON (each engine has its own shape).
    async fn status(&self) -> Result<serde_json::Value, Failure>;
    /// Log lines of one service (all when `None`) to `sink`, each as
    /// `source | line`; followed until the source ends when `follow`.
    async fn logs(
        &self,
        service: Option<&str>,
        follow: bool,
        tail: usize,
        sink: impl FnMut(&str),
    ) -> Result<(), LogsError>;
    /// The dry run: what release `next` would change against what runs
    /// (`history` newest first).
    async fn dry_run(
        &self,
        history: &[Release],
        spec: &ReleaseSpec,
        next: u32,
    ) -> Result<Vec<PlanLine>, Failure>;
}

/// Records this run's events with release `number` and marks it failed.
fn finish_failed<P: Platform>(
    p: &P,
    store: &mut Store,
    number: u32,
    f: &Failure,
) -> Result<(), Failure> {
    record_events(p, store, number);
    store.finish_release(
        p.profile(),
        number,
        ReleaseStatus::Failed,
        Some(&f.to_string()),
    )?;
    Ok(())
}

fn spec_of(r: &Release) -> Result<ReleaseSpec, Failure> {
    serde_json::from_str(&r.spec).map_err(|x| Failure::from(format!("release {}: {x}", r.number)))
}

/// Runs `work` holding the profile's lock; the lock is let go whatever
/// the outcome.
async fn locked<P: Platform, T>(
    p: &mut P,
    how: &LockRequest,
    work: impl AsyncFnOnce(&P) -> Result<T, Failure>,
) -> Result<T, Failure> {
    if let Some(note) = p.lock(how).await? {
        p.progress().step("lock", note);
    }
    let out = work(p).await;
    p.unlock().await;
    out
}

/// Records the events of this run with release `number`.
fn record_events<P: Platform>(p: &P, store: &Store, number: u32) {
    for ev in p.progress().events() {
        let _ = store.release_event(p.profile(), number, &ev.phase, &ev.message);
    }
}

/// Deploys `spec`: everything checkable is checked before anything
/// changes; on any failure the live release serves alone again.
pub async fn deploy<P: Platform>(
    p: &mut P,
    store: &mut Store,
    mut spec: ReleaseSpec,
    dry_run: bool,
    how: &LockRequest,
) -> Result<Report, Failure> {
    let images = p.prepare(&mut spec, dry_run).await?;
    let fingerprint = spec.fingerprint();
    if dry_run {
        let mut report = plan(p, store, &spec, &fingerprint).await?;
        if report.status == ReportStatus::Planned {
            report.plan.splice(0..0, images);
        }
        return Ok(report);
    }
    locked(p, how, async |p: &P| {
        let live = settle(p, store).await?;
        if let Some(r) = unchanged(p, live.as_ref(), &fingerprint, "nothing to do").await? {
            return Ok(r);
        }
        begin_and_roll_out(p, store, &spec, &fingerprint, live.as_ref()).await
    })
    .await
}

/// Closes what earlier runs left open and makes the live release serve
/// alone; returns the live release.
pub async fn settle<P: Platform>(p: &P, store: &mut Store) -> Result<Option<Release>, Failure> {
    let mut stale = Vec::new();
    // By number: an interrupted rollback's `runs` is a good release.
    for (number, _, note) in store.settle_unfinished(p.profile())? {
        p.progress().step("reconcile", note);
        stale.push(number);
    }
    let live = store.live_release(p.profile())?;
    if let Some(l) = &live
        && (!stale.is_empty() || !p.is_serving(l).await?)
    {
        p.converge(&spec_of(l)?, l.runs).await?;
        p.progress().step(
            "reconcile",
            format!("traffic restored to release {} alone", l.runs),
        );
    }
    for note in p.remove_leftovers(live.as_ref(), &stale).await? {
        p.progress().step("reconcile", note);
    }
    Ok(live)
}

/// The report for a deploy that would change nothing: the live release
/// already runs this exact spec and serves alone.
async fn unchanged<P: Platform>(
    p: &P,
    live: Option<&Release>,
    fingerprint: &str,
    what: &str,
) -> Result<Option<Report>, Failure> {
    let Some(l) = live else { return Ok(None) };
    if l.fingerprint != fingerprint || !p.is_serving(l).await? {
        return Ok(None);
    }
    Ok(Some(Report::done(
        l.number,
        ReportStatus::Unchanged,
        format!("release {} already runs this exact spec; {what}", l.number),
    )))
}

async fn begin_and_roll_out<P: Platform>(
    p: &P,
    store: &mut Store,
    spec: &ReleaseSpec,
    fingerprint: &str,
    live: Option<&Release>,
) -> Result<Report, Failure> {
    let profile = p.profile().to_string();
    let strategy = p.options().strategy;
    let spec_json = serde_json::to_string(spec).map_err(|x| x.to_string())?;
    let number = store.begin_release(NewRelease {
        profile: &profile,
        strategy: strategy.as_str(),
        runs: None,
        hosts: &p.places(),
        fingerprint,
        images: &images_json(spec),
        spec: &spec_json,
    })?;
    let started = Instant::now();
    p.progress().step(
        "release",
        format!("release {number} of {profile}{} ({strategy})", p.venue()),
    );
    if let Some(step) = &spec.release {
        p.progress().step(
            "release-command",
            format!(
                "running `{}` once before any traffic moves",
                step.describe()
            ),
        );
        match p.run_release_step(spec, step, number).await {
            Ok(summary) => p.progress().step("release-command", summary),
            Err(f) => {
                // Nothing was started or routed: the live release serves on.
                p.progress().step("failed", f.why.clone());
                finish_failed(p, store, number, &f)?;
                return Err(Failure {
                    why: format!(
                        "release {number} stopped before any traffic moved: {}",
                        f.why
                    ),
                    ..f
                });
            }
        }
    }
    let outcome = match p.roll_out(spec, number).await {
        Ok(Outcome::Live) => p.bake(spec, number).await.map(|()| Outcome::Live),
        other => other,
    };
    match outcome {
        Ok(Outcome::Live) => {
            let history = store.releases(&profile)?;
            p.cleanup(&history, spec, number, live).await?;
            p.progress().step(
                "done",
                format!(
                    "release {number} is live ({:.1}s)",
                    started.elapsed().as_secs_f64()
                ),
            );
            record_events(p, store, number);
            store.finish_release(&profile, number, ReleaseStatus::Succeeded, None)?;
            Ok(Report::done(
                number,
                ReportStatus::Succeeded,
                format!("release {number} is live"),
            ))
        }
        Ok(Outcome::Paused(why)) => {
            p.progress().step("paused", why.clone());
            record_events(p, store, number);
            store.finish_release(&profile, number, ReleaseStatus::Paused, Some(&why))?;
            Ok(Report::done(number, ReportStatus::Paused, why))
        }
        Err(f) => {
            p.progress().step("failed", f.why.clone());
            match p.restore(live, number).await {
                Ok(msg) => p.progress().step("rollback", msg),
                Err(x) => p
                    .progress()
                    .step("rollback", format!("could not roll back: {x}")),
            }
            finish_failed(p, store, number, &f)?;
            Err(Failure {
                why: format!("release {number} failed and was rolled back: {}", f.why),
                ..f
            })
        }
    }
}

/// The dry run: changes nothing, reads what runs.
async fn plan<P: Platform>(
    p: &P,
    store: &Store,
    spec: &ReleaseSpec,
    fingerprint: &str,
) -> Result<Report, Failure> {
    let live = store.live_release(p.profile())?;
    let what = "a deploy would change nothing";
    if let Some(r) = unchanged(p, live.as_ref(), fingerprint, what).await? {
        return Ok(r);
    }
    let history = store.releases(p.profile())?;
    let next = history.first().map_or(1, |r| r.number + 1);
    let mut lines = p.dry_run(&history, spec, next).await?;
    // The release command runs before every other step of the rollout.
    if let Some(step) = &spec.release {
        lines.insert(
            0,
            PlanLine {
                host: p.places().first().cloned().unwrap_or_default(),
                action: "run".into(),
                kind: "release command".into(),
                name: step.service.clone(),
                detail: format!(
                    "`{}` once, before any traffic moves (timeout {}s); a failure stops the deploy",
                    step.command.join(" "),
                    step.timeout_s
                ),
            },
        );
    }
    Ok(planned(next, lines, ""))
}

/// A dry run's report; `context` adds what the plan assumed.
pub fn planned(next: u32, lines: Vec<PlanLine>, context: &str) -> Report {
    Report {
        release: Some(next),
        status: ReportStatus::Planned,
        message: format!(
            "dry run: release {next} would make {} change(s){context}; nothing was changed",
            lines.iter().filter(|l| l.action != "keep").count()
        ),
        plan: lines,
    }
}

/// Returns to release `to` (else the previous good one, or the live one
/// when a canary waits): a new release that runs the target's spec.
pub async fn rollback<P: Platform>(
    p: &mut P,
    store: &mut Store,
    to: Option<u32>,
    how: &LockRequest,
) -> Result<Report, Failure> {
    // A canary waiting for a human: rolling back aborts it.
    let history = store.releases(p.profile())?;
    let choice = rollback_choice(p.profile(), &history, to)
        .map_err(|why| Failure::new(FailureKind::Input, why))?;
    locked(p, how, async |p: &P| switch_to(p, store, &choice).await).await
}

/// What a rollback chose, with what it chose from.
#[derive(Debug, Clone)]
pub struct RollbackChoice {
    pub target: Release,
    pub live: Option<Release>,
    pub paused: Option<Release>,
}

/// The release a rollback returns to: `to`, else — when a canary waits
/// for a human — the live release (aborting the canary), else the newest
/// good one before the live release. `history` is newest first.
pub fn rollback_choice(
    profile: &str,
    history: &[Release],
    to: Option<u32>,
) -> Result<RollbackChoice, String> {
    let live = history
        .iter()
        .find(|r| r.status == ReleaseStatus::Succeeded)
        .cloned();
    let paused = history
        .iter()
        .find(|r| r.status == ReleaseStatus::Paused)
        .cloned();
    let target = match (to, &live) {
        (None, Some(l)) if paused.is_some() => l.clone(),
        (Some(n), _) => history
            .iter()
            .find(|r| r.number == n)
            .cloned()
            .ok_or_else(|| format!("profile {profile} has no release {n}"))?,
        (None, _) => history
            .iter()
            .find(|r| {
                r.status == ReleaseStatus::Succeeded
                    && live
                        .as_ref()
                        .is_some_and(|l| r.runs != l.runs && r.number < l.number)
            })
            .cloned()
            .ok_or_else(|| format!("profile {profile} has no earlier good release to return to"))?,
    };
    if matches!(
        target.status,
        ReleaseStatus::Failed | ReleaseStatus::Interrupted
    ) {
        return Err(format!(
            "release {} {}; roll back to a release that went live",
            target.number, target.status
        ));
    }
    Ok(RollbackChoice {
        target,
        live,
        paused,
    })
}

async fn switch_to<P: Platform>(
    p: &P,
    store: &mut Store,
    choice: &RollbackChoice,
) -> Result<Report, Failure> {
    let RollbackChoice {
        target,
        live,
        paused,
    } = choice;
    let profile = p.profile().to_string();
    let spec = spec_of(target)?;
    let number = store.begin_release(NewRelease {
        profile: &profile,
        strategy: "rollback",
        runs: Some(target.runs),
        hosts: &p.places(),
        fingerprint: &target.fingerprint,
        images: &images_json(&spec),
        spec: &target.spec,
    })?;
    p.progress().step(
        "rollback",
        format!("release {number}: back to release {}", target.runs),
    );
    if let Err(f) = p.converge(&spec, target.runs).await {
        finish_failed(p, store, number, &f)?;
        return Err(f);
    }
    if let Some(c) = paused.as_ref().filter(|c| c.runs != target.runs) {
        store.finish_release(
            &profile,
            c.number,
            ReleaseStatus::RolledBack,
            Some(&format!("canary aborted by release {number}")),
        )?;
        p.discard(c.runs).await?;
    }
    if let Some(l) = live.as_ref().filter(|l| l.runs != target.runs) {
        store.finish_release(
            &profile,
            l.number,
            ReleaseStatus::RolledBack,
            Some(&format!("rolled back by release {number}")),
        )?;
    }
    let undone_not = migrations_left_in_place(target, [live.as_ref(), paused.as_ref()]);
    if let Some(w) = &undone_not {
        p.progress().step("rollback", w.clone());
    }
    record_events(p, store, number);
    store.finish_release(&profile, number, ReleaseStatus::Succeeded, None)?;
    Ok(Report::done(
        number,
        ReportStatus::Succeeded,
        format!(
            "release {number} serves again what release {} ran{}",
            target.runs,
            undone_not.map_or(String::new(), |w| format!("; {w}"))
        ),
    ))
}

/// The release commands (migrations) that ran for the releases a rollback
/// leaves: switching traffic back does not undo what they changed.
fn migrations_left_in_place<'r>(
    target: &Release,
    left: impl IntoIterator<Item = Option<&'r Release>>,
) -> Option<String> {
    let ran: Vec<String> = left
        .into_iter()
        .flatten()
        .filter(|r| r.runs != target.runs)
        .filter_map(|r| {
            let step = spec_of(r).ok()?.release?;
            Some(format!("release {} ran `{}`", r.runs, step.describe()))
        })
        .collect();
    (!ran.is_empty()).then(|| {
        format!(
            "{}: switching traffic back does not undo what it changed (restore the data or reverse the migration yourself)",
            ran.join(", ")
        )
    })
}

/// Sends all traffic to the canary that paused for a human, watches it
/// for the bake period, and finishes its release.
pub async fn promote<P: Platform>(
    p: &mut P,
    store: &mut Store,
    how: &LockRequest,
) -> Result<Report, Failure> {
    let profile = p.profile().to_string();
    let paused = store
        .releases(&profile)?
        .into_iter()
        .find(|r| r.status == ReleaseStatus::Paused)
        .ok_or_else(|| {
            Failure::new(
                FailureKind::Input,
                format!("profile {profile} has no paused canary to promote"),
            )
        })?;
    let spec = spec_of(&paused)?;
    locked(p, how, async |p: &P| {
        p.promote(&spec, paused.runs).await?;
        p.bake(&spec, paused.runs).await?;
        store.release_event(
            &profile,
            paused.number,
            "promote",
            "promoted by hand to 100%",
        )?;
        store.finish_release(&profile, paused.number, ReleaseStatus::Succeeded, None)?;
        Ok(Report::done(
            paused.number,
            ReportStatus::Succeeded,
            format!("release {} promoted and live", paused.number),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(number: u32, runs: u32, status: ReleaseStatus) -> Release {
        Release {
            profile: "p".into(),
            number,
            status,
            strategy: "rolling".into(),
            runs,
            actor: String::new(),
            hosts: vec![],
            fingerprint: String::new(),
            images: serde_json::Value::Null,
            spec: String::new(),
            reason: None,
            started_at: String::new(),
            finished_at: None,
            duration_ms: None,
        }
    }

    fn target(history: &[Release], to: Option<u32>) -> Result<u32, String> {
        rollback_choice("p", history, to).map(|c| c.target.number)
    }

    #[test]
    fn a_rollback_returns_to_the_previous_good_release_or_aborts_a_waiting_canary() {
        use ReleaseStatus::*;
        // Newest first: 4 failed, 3 live, 2 rolled back by 3, 1 good.
        let h = [
            release(4, 4, Failed),
            release(3, 3, Succeeded),
            release(2, 2, RolledBack),
            release(1, 1, Succeeded),
        ];
        assert_eq!(target(&h, None), Ok(1));
        assert_eq!(target(&h, Some(2)), Ok(2), "asked for by number");
        let refused = target(&h, Some(4)).unwrap_err();
        assert!(refused.contains("release 4 failed"), "{refused}");
        assert!(target(&h, Some(9)).unwrap_err().contains("no release 9"));
        // A rollback to an earlier rollback runs what that one ran.
        let h2 = [release(2, 1, Succeeded), release(1, 1, Succeeded)];
        assert!(
            target(&h2, None)
                .unwrap_err()
                .contains("no earlier good release")
        );
        // A canary waiting for a human: back to the live release.
        let waiting = [release(5, 5, Paused), release(3, 3, Succeeded)];
        let c = rollback_choice("p", &waiting, None).unwrap();
        assert_eq!((c.target.number, c.paused.map(|p| p.number)), (3, Some(5)));
    }

    #[test]
    fn a_rollback_names_the_migrations_it_cannot_undo() {
        let with_step = |number: u32| {
            let mut r = release(number, number, ReleaseStatus::Succeeded);
            r.spec = serde_json::to_string(&ReleaseSpec {
                release: Some(ReleaseStep {
                    service: "api".into(),
                    command: vec!["alembic".into(), "upgrade".into(), "head".into()],
                    timeout_s: 600,
                }),
                ..Default::default()
            })
            .unwrap();
            r
        };
        let mut plain = release(3, 3, ReleaseStatus::Succeeded);
        plain.spec = serde_json::to_string(&ReleaseSpec::default()).unwrap();
        let target = release(2, 2, ReleaseStatus::Succeeded);
        let live = with_step(4);
        let w = migrations_left_in_place(&target, [Some(&live), None]).unwrap();
        assert!(
            w.starts_with("release 4 ran `api: alembic upgrade head`"),
            "{w}"
        );
        assert!(w.contains("does not undo"));
        assert_eq!(migrations_left_in_place(&target, [Some(&plain)]), None);
        // Returning to the release that ran it undoes nothing either way.
        assert_eq!(migrations_left_in_place(&live, [Some(&live)]), None);
    }
}
