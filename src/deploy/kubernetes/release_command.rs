//! The release command on Kubernetes: a Job (`render::kubernetes::
//! release_job`) run once per release before any Deployment changes,
//! after what it needs is in place: the namespace, policies, config, the
//! Secret and the dependencies. Which objects those are is decided here as
//! data; the platform applies them and waits for the Job.

use super::plan::{rank, secret_object};
use crate::describe::app::App;
use crate::render::gateway::Routing;
use serde_json::Value;

/// Kinds that serve or route the app's own traffic: they change only in
/// the rollout, after the release command has passed.
const ROLLED_OUT: [&str; 6] = [
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Ingress",
    "Gateway",
    "HTTPRoute",
];

/// What the release command needs in place, in apply order; then the Job.
pub fn objects(app: &App, routing: &Routing, release: u32) -> Option<(Vec<Value>, Value)> {
    let r = app.release.as_ref()?;
    let job = crate::render::kubernetes::release_job(app, &job_name(&r.service, release))?;
    let mut before: Vec<Value> = crate::render::kubernetes::objects(app, routing)
        .into_iter()
        .flat_map(|(_, docs)| docs)
        .filter(|o| !ROLLED_OUT.contains(&o["kind"].as_str().unwrap_or("")))
        .collect();
    before.extend(secret_object(app));
    before.sort_by_key(|o| rank(o["kind"].as_str().unwrap_or("")));
    Some((before, job))
}

pub fn job_name(service: &str, release: u32) -> String {
    format!("{service}-release-r{release}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_comes_after_its_dependencies_and_before_any_deployment() {
        let app: App = serde_saphyr::from_str(
            r#"
apiVersion: deployment-manager/v1
kind: App
name: notes
services:
  api:
    image: notes/api:2
    ports: [{port: 8000, public: true}]
    secrets: [DATABASE_URL]
    depends_on: [db]
dependencies:
  db: {kind: postgres, version: "16"}
release: {service: api, command: [alembic, upgrade, head], timeout: 5m}
"#,
        )
        .unwrap();
        let (before, job) = objects(&app, &Routing::for_target("k8s-gke"), 7).unwrap();
        let kinds: Vec<&str> = before.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds[0], "Namespace");
        assert!(
            kinds.contains(&"StatefulSet"),
            "the database first: {kinds:?}"
        );
        assert!(kinds.contains(&"Secret"));
        assert!(!kinds.contains(&"Deployment"), "{kinds:?}");
        assert_eq!(job["metadata"]["name"], "api-release-r7");
        let pod = &job["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        assert_eq!(job["spec"]["backoffLimit"], 0);
        assert_eq!(job["spec"]["activeDeadlineSeconds"], 300);
        let c = &pod["containers"][0];
        assert_eq!(c["args"], serde_json::json!(["alembic", "upgrade", "head"]));
        assert!(c.get("readinessProbe").is_none());
        assert_eq!(c["image"], "notes/api:2");
        // Its own policy lets it reach the database, and the database's
        // lets it in; the API's Service does not select it.
        let policy = |name: &str| {
            before
                .iter()
                .find(|o| o["kind"] == "NetworkPolicy" && o["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("no policy {name}"))
                .clone()
        };
        let own = policy("api-release-traffic");
        assert_eq!(
            own["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "api-release"
        );
        assert!(own["spec"]["egress"].to_string().contains("\"db\""));
        assert!(
            policy("db-traffic")["spec"]["ingress"]
                .to_string()
                .contains("api-release")
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"],
            "api-release"
        );
    }
}
