//! Swarm objects built from the release spec: service specs (as the Engine
//! API's JSON, checked by bollard's model types), secrets and the overlay
//! network. Secret values go into swarm secrets only; services name them.

use super::Swarm;
use crate::deploy::docker_host::client::{LABEL_PROFILE, LABEL_RELEASE, LABEL_ROLE, LABEL_SERVICE};
use crate::deploy::spec::{AccessorySpec, ServiceSpec};
use crate::describe::node_placement::NodePlacement;
use base64::Engine as _;
use bollard::models::{NetworkCreateRequest, SecretSpec, ServiceSpec as SwarmSpec};
use serde_json::{Value, json};
use std::collections::HashMap;

const SECOND: i64 = 1_000_000_000;

/// A secret as a service mounts it: `/run/secrets/<file>`.
#[derive(Clone, Debug)]
pub struct SecretRef {
    pub id: String,
    pub name: String,
    pub file: String,
}

/// The secrets a service mounts and the uid:gid their files belong to.
#[derive(Clone, Debug, Default)]
pub struct SecretFiles {
    pub refs: Vec<SecretRef>,
    pub owner: (String, String),
}

/// The profile and overlay network services belong to.
pub struct Scope {
    pub profile: String,
    pub network: String,
}

impl Swarm<'_> {
    pub fn scope(&self) -> Scope {
        Scope {
            profile: self.dh.profile.clone(),
            network: self.network(),
        }
    }
}

/// How a service replaces its tasks, from our strategy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Order {
    /// New task healthy before the old one stops (rolling).
    StartFirst,
    /// Old tasks stop first, all at once (recreate, stateful dependencies).
    StopFirst,
}

/// Seconds swarm watches a new task before it counts the update as good:
/// the health check's start period plus its retries, and a margin.
pub fn monitor_s(s: &ServiceSpec) -> u64 {
    s.health.start_period_s + s.health.interval_s * s.health.retries as u64 + 2
}

fn labels(profile: &str, role: &str, service: &str, release: Option<u32>) -> Value {
    let mut l = json!({LABEL_PROFILE: profile, LABEL_ROLE: role, LABEL_SERVICE: service});
    if let Some(r) = release {
        l[LABEL_RELEASE] = json!(r.to_string());
    }
    l
}

fn mounts(profile: &str, volumes: &[String]) -> Vec<Value> {
    volumes
        .iter()
        .filter_map(|v| v.split_once(':'))
        .map(|(src, dst)| {
            if src.starts_with('/') {
                json!({"Type": "bind", "Source": src, "Target": dst})
            } else {
                json!({"Type": "volume", "Source": src, "Target": dst,
                    "VolumeOptions": {"Labels": {LABEL_PROFILE: profile}}})
            }
        })
        .collect()
}

/// app.yaml's placement in the Engine API's words, on a service spec;
/// spread over nodes is swarm's default and needs no preference.
fn place(spec: &mut Value, p: &NodePlacement) {
    if p.is_empty() {
        return;
    }
    let mut v = json!({});
    if !p.constraints.is_empty() {
        v["Constraints"] = json!(p.constraints);
    }
    if !p.spread.is_empty() {
        let prefs: Vec<Value> = p
            .spread
            .iter()
            .map(|l| json!({"Spread": {"SpreadDescriptor": format!("node.labels.{l}")}}))
            .collect();
        v["Preferences"] = json!(prefs);
    }
    if let Some(m) = p.max_per_node {
        v["MaxReplicas"] = json!(m);
    }
    spec["TaskTemplate"]["Placement"] = v;
}

fn secret_refs(secrets: &[SecretRef], owner: (String, String)) -> Vec<Value> {
    secrets
        .iter()
        .map(|r| {
            json!({"SecretID": r.id, "SecretName": r.name,
                "File": {"Name": r.file, "UID": owner.0, "GID": owner.1, "Mode": 0o400}})
        })
        .collect()
}

/// The service spec of one app service at one release. `name` is the
/// swarm service (the stable one for rolling, `…-r<N>` for blue-green and
/// canary). Endpoint mode is DNS round robin: our proxy resolves
/// `tasks.<name>`, so neither the routing mesh nor IPVS is needed, and a
/// task leaves DNS before swarm stops it.
pub fn app_service(
    on: &Scope,
    s: &ServiceSpec,
    name: &str,
    release: u32,
    replicas: u32,
    secrets: &SecretFiles,
    order: Order,
) -> Result<SwarmSpec, String> {
    let profile = &on.profile;
    let mut env: Vec<String> = s.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for r in &secrets.refs {
        env.push(format!("{}_FILE=/run/secrets/{}", r.file, r.file));
    }
    let mut container = json!({
        "Image": s.image,
        "Labels": labels(profile, "app", &s.name, Some(release)),
        "Env": env,
        "StopGracePeriod": s.stop_grace as i64 * SECOND,
        "Init": s.init,
        "Mounts": mounts(profile, &s.volumes),
        "Secrets": secret_refs(&secrets.refs, secrets.owner.clone()),
    });
    if !s.command.is_empty() {
        container["Args"] = json!(s.command);
    }
    if !s.health.command.is_empty() {
        let mut test = vec!["CMD".to_string()];
        test.extend(s.health.command.iter().cloned());
        container["HealthCheck"] = json!({
            "Test": test,
            "Interval": s.health.interval_s as i64 * SECOND,
            "Timeout": s.health.timeout_s as i64 * SECOND,
            "Retries": s.health.retries,
            "StartPeriod": s.health.start_period_s as i64 * SECOND,
        });
    }
    let mut limits = json!({});
    if let Some(m) = s.memory_limit {
        limits["MemoryBytes"] = json!(m);
    }
    if let Some(c) = s.nano_cpus {
        limits["NanoCPUs"] = json!(c);
    }
    let monitor = monitor_s(s) as i64 * SECOND;
    let (order_text, parallelism) = match order {
        Order::StartFirst => ("start-first", 1),
        Order::StopFirst => ("stop-first", 0),
    };
    let mut v = json!({
        "Name": name,
        "Labels": labels(profile, "app", &s.name, Some(release)),
        "TaskTemplate": {
            "ContainerSpec": container,
            "Resources": {"Limits": limits},
            "RestartPolicy": {"Condition": "any", "Delay": 2 * SECOND, "Window": 120 * SECOND},
            "Networks": [{"Target": on.network, "Aliases": [s.name]}],
        },
        "Mode": {"Replicated": {"Replicas": replicas}},
        "UpdateConfig": {
            "Parallelism": parallelism,
            "Delay": 0,
            "FailureAction": "rollback",
            "Monitor": monitor,
            "MaxFailureRatio": 0.0,
            "Order": order_text,
        },
        "RollbackConfig": {
            "Parallelism": parallelism,
            "Delay": 0,
            "FailureAction": "pause",
            "Monitor": monitor,
            "MaxFailureRatio": 0.0,
            "Order": order_text,
        },
        "EndpointSpec": {"Mode": "dnsrr"},
    });
    place(&mut v, &s.placement);
    serde_json::from_value(v).map_err(|e| format!("service spec of {name}: {e}"))
}

/// A dependency (database, cache…) as a one-replica service that stops
/// before it starts again: two copies must never share its volume.
pub fn accessory_service(
    sw: &Swarm<'_>,
    a: &AccessorySpec,
    secrets: &SecretFiles,
) -> Result<SwarmSpec, String> {
    let profile = &sw.dh.profile;
    let name = sw.accessory_name(&a.name);
    let mut env: Vec<String> = a.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for r in &secrets.refs {
        env.push(format!("{}_FILE=/run/secrets/{}", r.file, r.file));
    }
    let volumes: Vec<String> = a
        .volume
        .iter()
        .map(|(v, p)| format!("dm-{profile}-{v}:{p}"))
        .collect();
    let mut l = labels(profile, "accessory", &a.name, None);
    l["dm.kind"] = json!(a.kind);
    let mut v = json!({
        "Name": name,
        "Labels": l,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": a.image,
                "Labels": l,
                "Env": env,
                "StopGracePeriod": 60 * SECOND,
                "Mounts": mounts(profile, &volumes),
                "Secrets": secret_refs(&secrets.refs, secrets.owner.clone()),
            },
            "RestartPolicy": {"Condition": "any", "Delay": 2 * SECOND},
            "Networks": [{"Target": sw.network(), "Aliases": [a.name]}],
        },
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Parallelism": 1, "Order": "stop-first", "FailureAction": "pause"},
        "EndpointSpec": {"Mode": "dnsrr"},
    });
    place(&mut v, &a.placement);
    serde_json::from_value(v).map_err(|e| format!("service spec of {name}: {e}"))
}

/// The swarm secret holding `env_name` for a release. Secrets are
/// immutable in swarm, so each release that needs one gets its own; an
/// existing one is reused (a rollback or a retry needs no value).
pub async fn ensure_secret(
    sw: &Swarm<'_>,
    env_name: &str,
    release: u32,
) -> Result<SecretRef, String> {
    let name = format!(
        "dm-{}-{}-r{release}",
        sw.dh.profile,
        env_name.to_lowercase().replace('_', "-")
    );
    let filters = HashMap::from([("name".to_string(), vec![name.clone()])]);
    let list = sw
        .host()
        .docker
        .list_secrets(Some(bollard::query_parameters::ListSecretsOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| format!("list secrets: {e}"))?;
    if let Some(s) = list
        .into_iter()
        .find(|s| s.spec.as_ref().and_then(|p| p.name.as_deref()) == Some(name.as_str()))
    {
        return Ok(SecretRef {
            id: s.id.unwrap_or_default(),
            name,
            file: env_name.into(),
        });
    }
    let value = sw.dh.secrets.get(env_name).ok_or_else(|| {
        format!("secret {env_name} is needed for release {release}; provide it in the environment or with --env-file")
    })?;
    let spec = SecretSpec {
        name: Some(name.clone()),
        labels: Some(HashMap::from([
            (LABEL_PROFILE.to_string(), sw.dh.profile.clone()),
            ("dm.secret".to_string(), env_name.to_string()),
        ])),
        data: Some(base64::engine::general_purpose::STANDARD.encode(value.as_bytes())),
        ..Default::default()
    };
    let id = sw
        .host()
        .docker
        .create_secret(spec)
        .await
        .map_err(|e| format!("create secret {name}: {e}"))?
        .id;
    Ok(SecretRef {
        id,
        name,
        file: env_name.into(),
    })
}

/// The profile's overlay network; attachable so the proxy container on the
/// manager can join it. A bridge of the same name (from deploys to a plain
/// Docker host) is refused with the way out.
pub async fn ensure_network(sw: &Swarm<'_>) -> Result<bool, String> {
    let name = sw.network();
    let docker = &sw.host().docker;
    if let Ok(n) = docker
        .inspect_network(
            &name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        if n.driver.as_deref() != Some("overlay") {
            return Err(format!(
                "network {name} exists as a {} network from a deploy to a plain Docker host; run `deployment-manager destroy {}` on that platform first",
                n.driver.unwrap_or_default(),
                sw.dh.profile
            ));
        }
        return Ok(false);
    }
    docker
        .create_network(NetworkCreateRequest {
            name: name.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(HashMap::from([(
                LABEL_PROFILE.to_string(),
                sw.dh.profile.clone(),
            )])),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create network {name}: {e}"))?;
    Ok(true)
}

/// Secrets of `s` for a release and the uid:gid the files belong to
/// (the image's numeric USER, else root), so a non-root app can read them.
pub async fn release_secrets(
    sw: &Swarm<'_>,
    s: &ServiceSpec,
    release: u32,
) -> Result<SecretFiles, String> {
    secret_files(sw, &s.secrets, &s.image, release).await
}

/// The secrets `names` as files owned by the user `image` runs as: a
/// dependency image that runs as a user of its own (not root that drops
/// privileges, as the official database images do) must read them too.
pub async fn secret_files(
    sw: &Swarm<'_>,
    names: &[String],
    image: &str,
    release: u32,
) -> Result<SecretFiles, String> {
    let mut refs = Vec::new();
    for n in names {
        refs.push(ensure_secret(sw, n, release).await?);
    }
    // The same reading of the image's USER as a Docker host's secrets.
    let (u, g) = sw
        .host()
        .image_user(image)
        .await
        .and_then(|user| crate::deploy::docker_host::parse_owner(&user))
        .unwrap_or((0, 0));
    Ok(SecretFiles {
        refs,
        owner: (u.to_string(), g.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::spec::HealthSpec;

    fn web() -> ServiceSpec {
        ServiceSpec {
            name: "web".into(),
            image: "example/web:2".into(),
            command: vec!["--port".into(), "8080".into()],
            env: [("MODE".to_string(), "prod".to_string())].into(),
            secrets: vec!["API_TOKEN".into()],
            replicas: 3,
            port: Some(8080),
            public_port: Some(80),
            health: HealthSpec {
                command: vec!["/bin/probe".into()],
                interval_s: 2,
                timeout_s: 3,
                retries: 3,
                start_period_s: 10,
                ..Default::default()
            },
            memory_limit: Some(256 << 20),
            volumes: vec!["uploads:/srv/uploads".into()],
            stop_grace: 20,
            ..Default::default()
        }
    }

    fn spec(order: Order) -> Value {
        let on = Scope {
            profile: "shop".into(),
            network: "dm-shop".into(),
        };
        let secrets = SecretFiles {
            refs: vec![SecretRef {
                id: "sid1".into(),
                name: "dm-shop-api-token-r4".into(),
                file: "API_TOKEN".into(),
            }],
            owner: ("10001".into(), "10001".into()),
        };
        let s = app_service(&on, &web(), "dm-shop-web", 4, 3, &secrets, order).unwrap();
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn rolling_maps_to_a_start_first_update_that_rolls_itself_back() {
        let v = spec(Order::StartFirst);
        let u = &v["UpdateConfig"];
        assert_eq!(u["Order"], "start-first");
        assert_eq!(u["Parallelism"], 1);
        assert_eq!(u["FailureAction"], "rollback");
        assert_eq!(u["MaxFailureRatio"], 0.0);
        // start period 10 s + 2 s × 3 retries + 2 s margin
        assert_eq!(u["Monitor"], 18 * SECOND);
        assert_eq!(v["RollbackConfig"]["Order"], "start-first");
        assert_eq!(v["EndpointSpec"]["Mode"], "dnsrr");
        let c = &v["TaskTemplate"]["ContainerSpec"];
        assert_eq!(c["HealthCheck"]["Test"], json!(["CMD", "/bin/probe"]));
        assert_eq!(c["Labels"]["dm.release"], "4");
        assert_eq!(c["Args"], json!(["--port", "8080"]));
        // Labels are hash maps in bollard's model: sort for a stable file.
        insta::with_settings!({sort_maps => true}, {
            insta::assert_json_snapshot!(v);
        });
    }

    #[test]
    fn placement_from_app_yaml_reaches_the_task_template() {
        assert!(
            spec(Order::StartFirst)["TaskTemplate"]
                .get("Placement")
                .is_none()
        );
        let mut s = web();
        s.placement = NodePlacement {
            constraints: vec!["node.labels.disk==ssd".into()],
            spread: vec!["zone".into()],
            max_per_node: Some(2),
        };
        let on = Scope {
            profile: "shop".into(),
            network: "dm-shop".into(),
        };
        let v = app_service(
            &on,
            &s,
            "dm-shop-web",
            4,
            3,
            &SecretFiles::default(),
            Order::StartFirst,
        )
        .unwrap();
        let v = serde_json::to_value(v).unwrap();
        assert_eq!(
            v["TaskTemplate"]["Placement"],
            json!({"Constraints": ["node.labels.disk==ssd"],
                "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                "MaxReplicas": 2})
        );
    }

    #[test]
    fn recreate_stops_everything_first() {
        let v = spec(Order::StopFirst);
        assert_eq!(v["UpdateConfig"]["Order"], "stop-first");
        assert_eq!(v["UpdateConfig"]["Parallelism"], 0);
    }

    #[test]
    fn secrets_are_named_files_and_never_values() {
        let v = spec(Order::StartFirst);
        let c = &v["TaskTemplate"]["ContainerSpec"];
        assert_eq!(
            c["Secrets"],
            json!([{"SecretID": "sid1", "SecretName": "dm-shop-api-token-r4",
                "File": {"Name": "API_TOKEN", "UID": "10001", "GID": "10001", "Mode": 0o400}}])
        );
        assert!(
            c["Env"]
                .as_array()
                .unwrap()
                .contains(&json!("API_TOKEN_FILE=/run/secrets/API_TOKEN"))
        );
        assert_eq!(c["Mounts"][0]["Source"], "uploads");
        assert_eq!(
            c["Mounts"][0]["VolumeOptions"]["Labels"]["dm.profile"],
            "shop"
        );
    }
}
