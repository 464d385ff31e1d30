//! The Kubernetes engine: kube-rs against an existing cluster. The plan
//! (`plan.rs`) is data; this module finds the cluster, applies objects
//! server-side with our field manager, waits on rollouts, switches
//! selectors and scales. Secret values reach the cluster only inside the
//! Secret object at apply time. `deploy.rs` runs planned steps,
//! `platform.rs` plugs the engine into the shared lifecycle.

pub mod deploy;
pub mod lease;
pub mod plan;
pub mod platform;
pub mod release_command;
pub mod status;

use crate::deploy::events::Progress;
use crate::deploy::release::Failure;
use crate::deploy::strategy::Options;
use crate::describe::app::App;
use crate::render::gateway::Routing;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::networking::v1::IngressClass;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;
use plan::{Current, FIELD_MANAGER, LABEL_RELEASE, LABEL_SLOT, Traffic};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct Kube<'a> {
    pub client: kube::Client,
    /// Where the client points, in words (in-cluster or a context).
    pub context: String,
    pub profile: String,
    pub progress: &'a Progress,
    pub options: Options,
    pub secrets: BTreeMap<String, String>,
    /// How public services are reached (profile settings `gateway`,
    /// `gateway-class`, `ingress-class`).
    pub routing: Routing,
    /// The profile's app, swaps applied: its name is the namespace.
    pub app: App,
}

/// Finds the cluster as kubectl would: the pod's service account inside
/// a cluster, else the current context of `KUBECONFIG` or ~/.kube/config;
/// otherwise says what is missing.
pub async fn detect() -> Result<(kube::Config, String), String> {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        let c = kube::Config::incluster().map_err(|e| format!("in-cluster config: {e}"))?;
        return Ok((c, "in-cluster (this pod's service account)".into()));
    }
    let file = std::env::var_os("KUBECONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::home_dir().map(|h| h.join(".kube/config")));
    match file {
        Some(f) if std::env::var_os("KUBECONFIG").is_some() || f.exists() => {
            let opts = kube::config::KubeConfigOptions::default();
            let c = kube::Config::from_kubeconfig(&opts)
                .await
                .map_err(|e| format!("kubeconfig {}: {e}", f.display()))?;
            let kc = kube::config::Kubeconfig::read().ok();
            let ctx = kc.and_then(|k| k.current_context).unwrap_or_else(|| "default".into());
            Ok((c, format!("context {ctx} of {}", f.display())))
        }
        _ => Err("no Kubernetes cluster: not inside a pod (KUBERNETES_SERVICE_HOST is unset), KUBECONFIG is unset and ~/.kube/config does not exist. Point KUBECONFIG at the cluster's kubeconfig, or run inside the cluster; `deploy --dry-run` shows the plan without one".into()),
    }
}

fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

impl<'a> Kube<'a> {
    pub async fn connect(
        profile: &str,
        progress: &'a Progress,
        options: Options,
    ) -> Result<Kube<'a>, String> {
        let (config, context) = detect().await?;
        let client =
            kube::Client::try_from(config).map_err(|e| format!("Kubernetes client: {e}"))?;
        client
            .apiserver_version()
            .await
            .map_err(|e| format!("the cluster ({context}) does not answer: {e}"))?;
        Ok(Kube {
            client,
            context,
            profile: profile.into(),
            progress,
            options,
            secrets: BTreeMap::new(),
            routing: Routing::for_target(""),
            app: App::default(),
        })
    }

    async fn api(
        &self,
        api_version: &str,
        kind: &str,
        ns: &str,
    ) -> Result<Api<DynamicObject>, String> {
        let (group, version) = split_api_version(api_version);
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| format!("{api_version} {kind} is not served by the cluster: {e}"))?;
        Ok(match caps.scope {
            Scope::Namespaced => Api::namespaced_with(self.client.clone(), ns, &ar),
            Scope::Cluster => Api::all_with(self.client.clone(), &ar),
        })
    }

    /// Server-side apply; a Secret gets its values here and only here.
    pub async fn apply(&self, object: &Value) -> Result<(), String> {
        let mut obj = object.clone();
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        if kind == "Secret"
            && let Some(data) = obj["stringData"].as_object_mut()
        {
            for (k, v) in data.iter_mut() {
                let value = self.secrets.get(k).ok_or_else(|| {
                    format!("secret {k} is needed for Secret/{name}; provide it in the environment or with --env-file")
                })?;
                *v = json!(value);
            }
        }
        let api = self
            .api(obj["apiVersion"].as_str().unwrap_or(""), &kind, &ns)
            .await?;
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        api.patch(&name, &pp, &Patch::Apply(&obj))
            .await
            .map(|_| ())
            .map_err(|e| format!("apply {kind}/{name}: {e}"))
    }

    /// Runs a release Job to its end: complete, failed, or past its
    /// deadline. On failure, the last lines of its pod come back.
    pub async fn run_job(&self, job: &Value, timeout: Duration) -> Result<f64, Failure> {
        use k8s_openapi::api::batch::v1::Job;
        let ns = job["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let name = job["metadata"]["name"].as_str().unwrap_or("").to_string();
        // A run cut off before it finished leaves the Job behind.
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), &ns);
        let _ = jobs.delete(&name, &DeleteParams::background()).await;
        let start = Instant::now();
        while jobs.get_opt(&name).await.ok().flatten().is_some() {
            if start.elapsed() > Duration::from_secs(30) {
                return Err(Failure::from(format!(
                    "job {name} from an earlier run is still being deleted"
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        self.apply(job).await?;
        let started = Instant::now();
        let done = loop {
            let st = jobs
                .get_status(&name)
                .await
                .map_err(|e| format!("status of job {name}: {e}"))?
                .status
                .unwrap_or_default();
            if st.succeeded.unwrap_or(0) > 0 {
                break Ok(());
            }
            let failed = st.failed.unwrap_or(0) > 0
                || st
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Failed" && c.status == "True");
            if failed {
                break Err(format!("job {name} failed"));
            }
            if started.elapsed() > timeout + Duration::from_secs(30) {
                break Err(format!(
                    "job {name} did not finish within {}s",
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let logs = self.job_logs(&ns, &name).await;
        let _ = jobs.delete(&name, &DeleteParams::background()).await;
        match done {
            Ok(()) => Ok(started.elapsed().as_secs_f64()),
            Err(why) => Err(Failure::unhealthy(why, Some(name), logs)),
        }
    }

    async fn job_logs(&self, ns: &str, job: &str) -> String {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let Ok(list) = pods
            .list(&ListParams::default().labels(&format!("job-name={job}")))
            .await
        else {
            return String::new();
        };
        let mut out = String::new();
        for p in list.items {
            let name = p.metadata.name.unwrap_or_default();
            let lp = kube::api::LogParams {
                tail_lines: Some(20),
                ..Default::default()
            };
            if let Ok(text) = pods.logs(&name, &lp).await {
                out.push_str(&text);
            }
        }
        out
    }

    pub async fn delete(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        ns: &str,
    ) -> Result<(), String> {
        let api = self.api(api_version, kind, ns).await?;
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(format!("delete {kind}/{name}: {e}")),
        }
    }

    pub async fn scale(&self, ns: &str, deployment: &str, replicas: u32) -> Result<(), String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let patch = json!({"spec": {"replicas": replicas}});
        match api
            .patch(deployment, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 && replicas == 0 => Ok(()),
            Err(e) => Err(format!("scale Deployment/{deployment}: {e}")),
        }
    }

    /// Replaces a Service's selector (keys not wanted are removed).
    pub async fn switch(
        &self,
        ns: &str,
        service: &str,
        selector: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let now = api
            .get(service)
            .await
            .map_err(|e| format!("Service/{service}: {e}"))?;
        let mut sel = serde_json::Map::new();
        for k in now.spec.and_then(|s| s.selector).unwrap_or_default().keys() {
            sel.insert(k.clone(), Value::Null);
        }
        for (k, v) in selector {
            sel.insert(k.clone(), json!(v));
        }
        let patch = json!({"spec": {"selector": sel}});
        api.patch(service, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| format!("switch Service/{service}: {e}"))
    }

    /// Waits for a Deployment's rollout, failing early when it exceeds its
    /// progress deadline or a new pod crash-loops, with the pod's events.
    pub async fn wait(&self, ns: &str, deployment: &str) -> Result<(), Failure> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let start = Instant::now();
        let mut said = String::new();
        loop {
            let d = api
                .get(deployment)
                .await
                .map_err(|e| format!("Deployment/{deployment}: {e}"))?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let generation = d.metadata.generation.unwrap_or(0);
            let st = d.status.clone().unwrap_or_default();
            let (updated, ready, available) = (
                st.updated_replicas.unwrap_or(0),
                st.ready_replicas.unwrap_or(0),
                st.available_replicas.unwrap_or(0),
            );
            let total = st.replicas.unwrap_or(0);
            if st.observed_generation.unwrap_or(0) >= generation
                && updated >= want
                && available >= want
                && total <= want
            {
                return Ok(());
            }
            let line = format!("{deployment}: {updated}/{want} updated, {ready} ready");
            if line != said {
                self.progress.step("rollout", line.clone());
                said = line;
            }
            let deadline = st
                .conditions
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Progressing" && c.status == "False");
            let crash = self.crash_looping(ns, &d).await;
            let why = if let Some(c) = deadline {
                Some(format!(
                    "{deployment} stopped progressing: {}",
                    c.message.unwrap_or_default()
                ))
            } else if let Some(pod) = crash {
                Some(format!("{deployment}: pod {pod} is crash-looping"))
            } else if start.elapsed()
                > self.options.deploy_timeout * (want.max(1) as u32) + Duration::from_secs(30)
            {
                Some(format!(
                    "{deployment} did not finish its rollout in time ({updated}/{want} updated, {ready} ready)"
                ))
            } else {
                None
            };
            if let Some(why) = why {
                let logs = self.pod_events(ns, &d).await;
                return Err(Failure::unhealthy(why, None, logs));
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// During the bake: fails when a pod of the Deployment crash-loops or
    /// fewer pods are available than it wants.
    pub async fn still_available(&self, ns: &str, deployment: &str) -> Result<(), Failure> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let d = api
            .get(deployment)
            .await
            .map_err(|e| format!("Deployment/{deployment}: {e}"))?;
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let available = d
            .status
            .as_ref()
            .and_then(|s| s.available_replicas)
            .unwrap_or(0);
        let why = if let Some(pod) = self.crash_looping(ns, &d).await {
            format!("{deployment}: pod {pod} is crash-looping during the bake period")
        } else if available < want {
            format!("{deployment}: {available} of {want} pods available during the bake period")
        } else {
            return Ok(());
        };
        let logs = self.pod_events(ns, &d).await;
        Err(Failure::unhealthy(why, None, logs))
    }

    async fn pods_of(&self, ns: &str, d: &Deployment) -> Vec<Pod> {
        let labels = d
            .spec
            .as_ref()
            .and_then(|s| s.selector.match_labels.clone())
            .unwrap_or_default();
        let sel: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        api.list(&ListParams::default().labels(&sel.join(",")))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    async fn crash_looping(&self, ns: &str, d: &Deployment) -> Option<String> {
        let release = d
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.labels.as_ref())
            .and_then(|l| l.get(LABEL_RELEASE).cloned());
        self.pods_of(ns, d).await.into_iter().find_map(|p| {
            let same = p
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(LABEL_RELEASE).cloned())
                == release;
            let looping = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c.state
                            .as_ref()
                            .and_then(|s| s.waiting.as_ref())
                            .and_then(|w| w.reason.as_deref())
                            .is_some_and(|r| {
                                r == "CrashLoopBackOff"
                                    || r == "ImagePullBackOff"
                                    || r == "ErrImagePull"
                            })
                    })
                });
            (same && looping).then(|| p.metadata.name.unwrap_or_default())
        })
    }

    /// Warning events of a Deployment's pods that are not ready.
    pub async fn pod_events(&self, ns: &str, d: &Deployment) -> String {
        let events: Api<Event> = Api::namespaced(self.client.clone(), ns);
        let mut out = String::new();
        for p in self.pods_of(ns, d).await {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                continue;
            }
            let name = p.metadata.name.unwrap_or_default();
            let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
            for e in events.list(&lp).await.map(|l| l.items).unwrap_or_default() {
                out.push_str(&format!(
                    "{name}: {} {}: {}\n",
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.message.unwrap_or_default()
                ));
            }
        }
        out
    }

    /// Which slot each Service selects and which release each Deployment runs.
    pub async fn current(&self, app: &App) -> Current {
        let ns = &app.name;
        let mut c = Current::default();
        let services: Api<Service> = Api::namespaced(self.client.clone(), ns);
        for s in services
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            if let (Some(name), Some(slot)) = (
                s.metadata.name.clone(),
                s.spec
                    .and_then(|p| p.selector)
                    .and_then(|sel| sel.get(LABEL_SLOT).cloned()),
            ) {
                c.slots.insert(name, slot);
            }
        }
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        for d in deployments
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
        {
            let release = d
                .spec
                .as_ref()
                .and_then(|s| s.template.metadata.as_ref())
                .and_then(|m| m.labels.as_ref())
                .and_then(|l| l.get(LABEL_RELEASE))
                .and_then(|r| r.parse().ok());
            let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
            if let (Some(name), Some(r)) = (d.metadata.name, release)
                && replicas > 0
            {
                c.releases.insert(name, r);
            }
        }
        c
    }

    /// Weighted canaries need a traffic layer that can weigh: the Gateway
    /// API routes the profile uses, or ingress-nginx's canary Ingress when
    /// the profile routes through an `nginx` Ingress and that controller
    /// runs. Otherwise the share follows the ratio of ready pods.
    pub async fn traffic(&self) -> Traffic {
        match &self.routing {
            Routing::Ingress { class } if class == "nginx" => {
                let classes: Api<IngressClass> = Api::all(self.client.clone());
                let nginx = classes
                    .list(&ListParams::default())
                    .await
                    .map(|l| {
                        l.items.iter().any(|c| {
                            c.spec.as_ref().and_then(|s| s.controller.as_deref())
                                == Some("k8s.io/ingress-nginx")
                        })
                    })
                    .unwrap_or(false);
                if nginx {
                    Traffic::IngressNginx
                } else {
                    Traffic::ReplicaRatio
                }
            }
            Routing::Ingress { .. } => Traffic::ReplicaRatio,
            _ => {
                let gateway = kube::discovery::group(&self.client, "gateway.networking.k8s.io")
                    .await
                    .is_ok();
                if gateway {
                    Traffic::GatewayApi
                } else {
                    Traffic::ReplicaRatio
                }
            }
        }
    }
}
