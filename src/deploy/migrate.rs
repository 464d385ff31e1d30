//! Moving an app to the next target of its growth path: the configs to
//! generate, the data to move and the cut-over order, as a plan that is
//! printed first and carried out only on confirmation. Between our own
//! engines the move is done here (a cold copy of each dependency's volume
//! through the Docker API, then a health-gated deploy); towards other
//! platforms the plan gives the exact commands that remain.

use super::EngineKind;
use super::docker_host::client::Host;
use super::docker_host::{Engine, proxy_image, status as dh_status};
use super::events::Progress;
use super::strategy::Options;
use super::swarm::{Swarm, status as sw_status};
use crate::deploy::spec::AccessorySpec;
use crate::state::Profile;
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::TryStreamExt;
use serde::Serialize;

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MigrationStep {
    /// prepare, data, cut-over, after
    pub phase: &'static str,
    pub action: String,
    pub detail: String,
    /// Done by `migrate --yes`; otherwise a command for a person.
    pub automatic: bool,
}

pub struct Move<'a> {
    pub profile: &'a str,
    pub new_profile: &'a str,
    pub from: &'a str,
    pub from_platform: EngineKind,
    pub to: &'a str,
    /// Our engine for the target, if we have one (else a PaaS or cloud).
    pub to_platform: Option<EngineKind>,
    pub out_dir: &'a str,
    pub files: &'a [String],
    /// How the generated files are deployed, from their header.
    pub deploy_hint: Option<&'a str>,
    pub accessories: &'a [AccessorySpec],
}

fn step(phase: &'static str, action: &str, detail: String, automatic: bool) -> MigrationStep {
    MigrationStep {
        phase,
        action: action.into(),
        detail,
        automatic,
    }
}

/// Dump and restore commands for a dependency moved by hand.
fn dump_restore(a: &AccessorySpec, profile: &str) -> String {
    let c = format!("dm-{profile}-{}", a.name);
    match a.kind.as_str() {
        "postgres" | "pgvector" => format!(
            "docker exec {c} pg_dumpall -U postgres > {n}.sql; then restore with psql \"$NEW_DATABASE_URL\" -f {n}.sql",
            n = a.name
        ),
        "mysql" | "mariadb" => format!(
            "docker exec {c} mysqldump --single-transaction --all-databases -uroot -p\"$MYSQL_ROOT_PASSWORD\" > {n}.sql; then mysql -h NEW_HOST -uroot -p < {n}.sql",
            n = a.name
        ),
        "mongodb" => format!(
            "docker exec {c} mongodump --archive > {n}.archive; then mongorestore --uri \"$NEW_MONGO_URL\" --archive={n}.archive",
            n = a.name
        ),
        "redis" | "valkey" => format!(
            "docker exec {c} redis-cli SAVE; docker cp {c}:/data/dump.rdb {n}.rdb; put it at /data/dump.rdb of the new instance before it starts",
            n = a.name
        ),
        _ => {
            let path = a.volume.as_ref().map_or("/data", |(_, p)| p.as_str());
            format!(
                "docker stop {c}; docker cp {c}:{path} {n}-data; copy {n}-data into the new volume before the new dependency starts",
                n = a.name
            )
        }
    }
}

pub fn plan(m: &Move) -> Vec<MigrationStep> {
    let ours = |p: EngineKind| matches!(p, EngineKind::DockerHost | EngineKind::Swarm);
    let mut steps = vec![
        step(
            "prepare",
            "generate",
            format!(
                "write {} for {} into {}",
                m.files.join(", "),
                m.to,
                m.out_dir
            ),
            true,
        ),
        step(
            "prepare",
            "profile",
            format!(
                "create profile {} (the same app, target {})",
                m.new_profile, m.to
            ),
            true,
        ),
    ];
    // Volumes are copied cold between Docker engines we reach; anything
    // else is a dump and a restore by the operator.
    let copy = m.from_platform == EngineKind::DockerHost && m.to_platform.is_some_and(ours);
    for a in m.accessories {
        let Some((vol, path)) = &a.volume else {
            continue;
        };
        if copy {
            steps.push(step(
                "data",
                "copy",
                format!(
                    "{} ({}): stop dm-{}-{}, copy {path} of volume dm-{}-{vol} into dm-{}-{vol}",
                    a.name, a.kind, m.profile, a.name, m.profile, m.new_profile
                ),
                true,
            ));
        } else {
            steps.push(step(
                "data",
                "dump-restore",
                format!("{} ({}): {}", a.name, a.kind, dump_restore(a, m.profile)),
                false,
            ));
        }
    }
    let from_ours = matches!(
        m.from_platform,
        EngineKind::DockerHost | EngineKind::Swarm | EngineKind::Kubernetes
    );
    steps.push(step(
        "cut-over",
        "stop",
        format!(
            "stop {} on {} (its containers and volumes stay for a way back)",
            m.profile, m.from
        ),
        from_ours && m.to_platform.is_some(),
    ));
    match m.to_platform {
        Some(_) => steps.push(step(
            "cut-over",
            "deploy",
            format!(
                "deployment-manager deploy {} (health-gated; a failure starts {} again)",
                m.new_profile, m.profile
            ),
            true,
        )),
        None => steps.push(step(
            "cut-over",
            "deploy",
            m.deploy_hint.map_or_else(
                || format!("deploy the files in {} with {}'s tooling", m.out_dir, m.to),
                |h| format!("{h} (in {})", m.out_dir),
            ),
            false,
        )),
    }
    if m.to_platform.is_none() || m.to_platform == Some(EngineKind::Kubernetes) {
        steps.push(step(
            "cut-over",
            "dns",
            format!("point the app's DNS name at {} once it answers", m.to),
            false,
        ));
    }
    steps.push(step(
        "after",
        "keep",
        format!(
            "keep {} stopped until the new one has run a while: `deployment-manager deploy {}` brings it back, `deployment-manager destroy {} --volumes` removes it",
            m.profile, m.profile, m.profile
        ),
        false,
    ));
    steps
}

/// Copies `path` of a (stopped) container into a volume on another (or the
/// same) engine, through a created-never-started helper container that
/// mounts the volume: no shell or tool is needed in any image.
/// The cold cut-over our engines can do: stop the old profile's stack
/// and, from Docker hosts with `copy`, copy each dependency's volume to
/// the new profile's first host. Returns the bytes copied.
pub async fn stop_and_copy(
    from: EngineKind,
    old: &Profile,
    new: &Profile,
    accessories: &[AccessorySpec],
    copy: bool,
    progress: &Progress,
) -> Result<u64, String> {
    let hosts = old.settings.hosts_or_local();
    match from {
        EngineKind::Swarm => {
            let sw = Swarm::connect(&old.name, &hosts, progress, Options::default()).await?;
            sw_status::stop(&sw).await?;
        }
        EngineKind::Kubernetes => {}
        EngineKind::DockerHost => {
            let e = Engine::connect(&old.name, &hosts, progress, Options::default()).await?;
            dh_status::stop(&e).await?;
            if copy {
                let dst_hosts = new.settings.hosts_or_local();
                let dst =
                    Engine::connect(&new.name, &dst_hosts, progress, Options::default()).await?;
                let helper = proxy_image::ensure_proxy_image(&dst.hosts[0]).await?;
                let mut n = 0u64;
                for acc in accessories {
                    let Some((vol, path)) = &acc.volume else {
                        continue;
                    };
                    let bytes = copy_volume(
                        &e.hosts[0],
                        &format!("dm-{}-{}", old.name, acc.name),
                        path,
                        &dst.hosts[0],
                        &format!("dm-{}-{vol}", new.name),
                        &new.name,
                        &helper,
                    )
                    .await?;
                    progress.step(
                        "copy",
                        format!("{}: {bytes} bytes of {path} copied", acc.name),
                    );
                    n += bytes;
                }
                return Ok(n);
            }
        }
    }
    Ok(0)
}

pub async fn copy_volume(
    src: &Host,
    container: &str,
    path: &str,
    dst: &Host,
    volume: &str,
    profile: &str,
    helper_image: &str,
) -> Result<u64, String> {
    dst.ensure_volume(volume, profile).await?;
    let helper = format!("{volume}-copy");
    let _ = dst.remove(&helper).await;
    let plan = super::docker_host::client::ContainerPlan {
        name: &helper,
        image: helper_image,
        labels: Default::default(),
        command: vec!["version".into()],
        network: "none",
        binds: vec![format!("{volume}:/target")],
        ..Default::default()
    };
    dst.create(&plan).await?;
    let archive: Vec<u8> = src
        .docker
        .download_from_container(
            container,
            Some(DownloadFromContainerOptions {
                path: format!("{}/.", path.trim_end_matches('/')),
            }),
        )
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await
        .map_err(|e| format!("read {path} of {container}: {e}"))?;
    let bytes = archive.len() as u64;
    let up = dst
        .docker
        .upload_to_container(
            &helper,
            Some(UploadToContainerOptions {
                path: "/target".into(),
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(|e| format!("write into volume {volume}: {e}"));
    let _ = dst.remove(&helper).await;
    up?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> AccessorySpec {
        AccessorySpec {
            name: "db".into(),
            kind: "postgres".into(),
            image: "postgres:16".into(),
            volume: Some(("db-data".into(), "/var/lib/postgresql/data".into())),
            ..Default::default()
        }
    }

    fn plan_to(to: &str, to_platform: Option<EngineKind>) -> Vec<MigrationStep> {
        let files = vec!["fly.toml".to_string()];
        plan(&Move {
            profile: "shop",
            new_profile: "shop-next",
            from: "compose",
            from_platform: EngineKind::DockerHost,
            to,
            to_platform,
            out_dir: "migrate-shop-next",
            files: &files,
            deploy_hint: Some("flyctl deploy -c fly.toml"),
            accessories: &[db()],
        })
    }

    fn actions(steps: &[MigrationStep]) -> Vec<(&str, &str, bool)> {
        steps
            .iter()
            .map(|s| (s.phase, s.action.as_str(), s.automatic))
            .collect()
    }

    #[test]
    fn between_docker_engines_everything_but_the_last_word_is_done_for_you() {
        let steps = plan_to("swarm", Some(EngineKind::Swarm));
        assert_eq!(
            actions(&steps),
            vec![
                ("prepare", "generate", true),
                ("prepare", "profile", true),
                ("data", "copy", true),
                ("cut-over", "stop", true),
                ("cut-over", "deploy", true),
                ("after", "keep", false),
            ]
        );
        assert!(
            steps[2]
                .detail
                .contains("dm-shop-db-data into dm-shop-next-db-data")
        );
    }

    #[test]
    fn towards_a_paas_the_data_and_the_deploy_are_commands_for_a_person() {
        let steps = plan_to("fly", None);
        assert_eq!(
            actions(&steps),
            vec![
                ("prepare", "generate", true),
                ("prepare", "profile", true),
                ("data", "dump-restore", false),
                ("cut-over", "stop", false),
                ("cut-over", "deploy", false),
                ("cut-over", "dns", false),
                ("after", "keep", false),
            ]
        );
        assert!(steps[2].detail.contains("pg_dumpall") && steps[2].detail.contains("psql"));
        assert!(steps[4].detail.contains("flyctl deploy -c fly.toml"));
    }

    #[test]
    fn to_kubernetes_the_deploy_is_ours_and_the_data_is_a_dump() {
        let steps = plan_to("k8s-gke", Some(EngineKind::Kubernetes));
        let a = actions(&steps);
        assert!(a.contains(&("data", "dump-restore", false)));
        assert!(a.contains(&("cut-over", "deploy", true)));
        assert!(a.contains(&("cut-over", "dns", false)));
    }
}
