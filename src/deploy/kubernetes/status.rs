//! What runs in the cluster: the app's pods with readiness, restarts and
//! the events of failing ones; session Jobs in the sandbox namespace and
//! their quota; logs; stop and destroy.

use super::Kube;
use super::plan::{LABEL_RELEASE, LABEL_SLOT};
use crate::describe::app::App;
use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, ListParams, LogParams};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct PodStatus {
    pub name: String,
    pub service: String,
    pub release: String,
    pub slot: String,
    pub node: String,
    pub phase: String,
    pub ready: bool,
    pub restarts: i32,
    /// Warning events, for pods that are not ready.
    pub events: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub platform: &'static str,
    pub context: String,
    pub namespace: String,
    pub pods: Vec<PodStatus>,
    /// Service → slot its selector picks.
    pub routes: BTreeMap<String, String>,
    /// Live session Jobs in the sandbox namespace (apps that spawn them).
    pub session_jobs: Option<usize>,
    /// Quota of the sandbox namespace: resource → (used, hard).
    pub session_quota: BTreeMap<String, (String, String)>,
}

fn selector(app: &App) -> ListParams {
    ListParams::default().labels(&format!("app.kubernetes.io/part-of={}", app.name))
}

pub async fn status(k: &Kube<'_>, app: &App) -> Result<Status, String> {
    let ns = &app.name;
    let pods: Api<Pod> = Api::namespaced(k.client.clone(), ns);
    let events: Api<Event> = Api::namespaced(k.client.clone(), ns);
    let mut out = Vec::new();
    for p in pods
        .list(&selector(app))
        .await
        .map_err(|e| format!("pods in {ns}: {e}"))?
        .items
    {
        let labels = p.metadata.labels.clone().unwrap_or_default();
        let st = p.status.clone().unwrap_or_default();
        let ready = st
            .conditions
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let name = p.metadata.name.clone().unwrap_or_default();
        let mut evs = Vec::new();
        if !ready {
            let lp = ListParams::default().fields(&format!("involvedObject.name={name}"));
            for e in events.list(&lp).await.map(|l| l.items).unwrap_or_default() {
                if e.type_.as_deref() == Some("Warning") {
                    evs.push(format!(
                        "{}: {}",
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    ));
                }
            }
        }
        out.push(PodStatus {
            service: labels
                .get("app.kubernetes.io/name")
                .cloned()
                .unwrap_or_default(),
            release: labels.get(LABEL_RELEASE).cloned().unwrap_or_default(),
            slot: labels.get(LABEL_SLOT).cloned().unwrap_or_default(),
            node: p.spec.and_then(|s| s.node_name).unwrap_or_default(),
            phase: st.phase.unwrap_or_default(),
            ready,
            restarts: st
                .container_statuses
                .unwrap_or_default()
                .iter()
                .map(|c| c.restart_count)
                .sum(),
            events: evs,
            name,
        });
    }
    let spawns = app.services.values().any(|s| s.traits.spawns_containers);
    let mut session_jobs = None;
    let mut session_quota = BTreeMap::new();
    if spawns {
        let sandbox = format!("{}-sandbox", app.name);
        let jobs: Api<Job> = Api::namespaced(k.client.clone(), &sandbox);
        session_jobs = Some(
            jobs.list(&ListParams::default())
                .await
                .map(|l| {
                    l.items
                        .iter()
                        .filter(|j| j.status.as_ref().and_then(|s| s.active).unwrap_or(0) > 0)
                        .count()
                })
                .unwrap_or(0),
        );
        let quotas: Api<ResourceQuota> = Api::namespaced(k.client.clone(), &sandbox);
        if let Ok(q) = quotas.get("sessions").await {
            let st = q.status.unwrap_or_default();
            let used = st.used.unwrap_or_default();
            for (r, hard) in st.hard.unwrap_or_default() {
                let u = used.get(&r).map(|q| q.0.clone()).unwrap_or_default();
                session_quota.insert(r, (u, hard.0));
            }
        }
    }
    Ok(Status {
        platform: "kubernetes",
        context: k.context.clone(),
        namespace: ns.clone(),
        pods: out,
        routes: k.current(app).await.slots,
        session_jobs,
        session_quota,
    })
}

/// Logs of the app's pods (one service, or all), optionally followed.
pub async fn logs(
    k: &Kube<'_>,
    app: &App,
    service: Option<&str>,
    follow: bool,
    tail: usize,
    mut sink: impl FnMut(&str),
) -> Result<(), String> {
    let pods: Api<Pod> = Api::namespaced(k.client.clone(), &app.name);
    let list = pods
        .list(&selector(app))
        .await
        .map_err(|e| e.to_string())?
        .items;
    let chosen: Vec<String> = list
        .into_iter()
        .filter(|p| {
            service.is_none_or(|s| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/name"))
                    .map(String::as_str)
                    == Some(s)
            })
        })
        .filter_map(|p| p.metadata.name)
        .collect();
    if chosen.is_empty() {
        return Err(format!("no pods of {} match", app.name));
    }
    let lp = LogParams {
        follow,
        tail_lines: Some(tail as i64),
        timestamps: true,
        ..Default::default()
    };
    let mut streams = Vec::new();
    for name in &chosen {
        let s = pods
            .log_stream(name, &lp)
            .await
            .map_err(|e| format!("logs of {name}: {e}"))?;
        streams.push(s.lines().map(move |l| (name.clone(), l)).boxed());
    }
    let mut all = futures_util::stream::select_all(streams);
    while let Some((pod, line)) = all.next().await {
        let line = line.map_err(|e| e.to_string())?;
        sink(&format!("{pod} | {line}\n"));
    }
    Ok(())
}

/// Scales every Deployment of the app to zero.
pub async fn stop(k: &Kube<'_>, app: &App) -> Result<usize, String> {
    let api: Api<Deployment> = Api::namespaced(k.client.clone(), &app.name);
    let mut n = 0;
    for d in api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?
        .items
    {
        if let Some(name) = d.metadata.name {
            k.scale(&app.name, &name, 0).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// Deletes the app's namespaces (and with them every object in them).
pub async fn destroy(k: &Kube<'_>, app: &App) -> Result<usize, String> {
    let api: Api<Namespace> = Api::all(k.client.clone());
    let mut n = 0;
    for ns in [app.name.clone(), format!("{}-sandbox", app.name)] {
        match api.delete(&ns, &DeleteParams::default()).await {
            Ok(_) => n += 1,
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(format!("delete namespace {ns}: {e}")),
        }
    }
    Ok(n)
}
