//! `DEPLOY.md` per target: steps, the secrets to set, how to scale, roll
//! back, back up and restore, and troubleshooting for the failures seed 002
//! lists.

use super::GeneratedFile;
use crate::analyse::cost::Estimate;
use crate::analyse::graph::{Graph, Reach};
use crate::analyse::placement::{Hosting, Layout, Placement};
use crate::describe::app::App;
use crate::describe::secrets_list;

fn steps(app: &App, generator: &str) -> (String, String, String) {
    let n = &app.name;
    match generator {
        "kubernetes" => (
            format!("1. Create the namespace and the secrets (values never live in these files):\n   `kubectl apply -f namespace.yaml && kubectl -n {n} create secret generic {n}-secrets --from-env-file=secrets.env`\n2. Public services are routed with the Gateway API (`gateway.yaml`: a Gateway and an HTTPRoute per public service). On GKE the Gateway uses the managed class `{gke}` (enable the Gateway API on the cluster). Elsewhere install the Gateway API CRDs and Envoy Gateway, and create its class: `kubectl apply -f - <<< '{{\"apiVersion\":\"gateway.networking.k8s.io/v1\",\"kind\":\"GatewayClass\",\"metadata\":{{\"name\":\"{eg}\"}},\"spec\":{{\"controllerName\":\"gateway.envoyproxy.io/gatewayclass-controller\"}}}}'`. Install cert-manager with Gateway API support enabled (`config.enableGatewayAPI=true`) and a `letsencrypt` ClusterIssuer: it issues the Gateway's `{n}-tls` certificate. To attach to a Gateway you already run instead, `deployment-manager profile set <profile> gateway <namespace>/<name>` (its listener must allow routes from namespace `{n}`); for an Ingress controller, `profile set <profile> ingress-class <class>`.\n3. `kubectl apply -k .` then `kubectl -n {n} rollout status deployment --timeout=5m`.", gke = super::gateway::GKE_CLASS, eg = super::gateway::ENVOY_CLASS),
            format!("`kubectl -n {n} scale deployment/<service> --replicas=N`; services with autoscaling follow their HorizontalPodAutoscaler."),
            format!("`kubectl -n {n} rollout undo deployment/<service>` returns to the previous ReplicaSet; `kubectl -n {n} rollout history deployment/<service>` lists revisions."),
        ),
        "swarm" => (
            format!("1. `docker swarm init` on the first manager; label the node that holds each stateful service's volume: `docker node update --label-add {n}.<service>=true <node>`.\n2. Create each secret once: `printf %s \"$VALUE\" | docker secret create NAME -`.\n3. `docker stack deploy --detach=false -c stack.yaml {n}`.\n4. Entry point: swarm publishes the public ports on every node (its routing mesh needs IPVS in the nodes' kernels). Put the nodes behind a load balancer that checks each public service's health path, or give the domain one DNS A record per node (clients try the next address when one refuses), so no node is a single point of failure. Or deploy with `deployment-manager profile set <profile> target swarm`, `profile set <profile> hosts ssh://<manager>,ssh://<node2>,…` and `deployment-manager deploy <profile>`: it ships the images to every node it names (no registry), runs its own proxy on each of them (no IPVS needed) and moves all their weights together; point the load balancer or DNS at those nodes."),
            format!("`docker service scale {n}_<service>=N`."),
            format!("`docker service rollback {n}_<service>`; failed updates roll back by themselves (`failure_action: rollback`)."),
        ),
        "fly" => (
            "1. `flyctl apps create <app>` for each `*/fly.toml`; create volumes named in `[mounts]` with `flyctl volumes create`.\n2. Set secrets: `flyctl secrets set NAME=... --app <app>`.\n3. `flyctl deploy --config <service>/fly.toml`.".into(),
            "`flyctl scale count N --config <service>/fly.toml`; `flyctl scale vm shared-cpu-2x` for bigger machines.".into(),
            "`flyctl releases --config <service>/fly.toml` then `flyctl deploy --image <previous image>`.".into(),
        ),
        "cloud-run" => (
            "1. Create each secret in Secret Manager under the lower-case, dashed name the service YAML references.\n2. `gcloud run services replace <service>.service.yaml --region us-central1`.\n3. Allow public access where wanted: `gcloud run services add-iam-policy-binding <name> --member=allUsers --role=roles/run.invoker`.".into(),
            "Edit `autoscaling.knative.dev/minScale` / `maxScale` and replace the service again.".into(),
            "`gcloud run services update-traffic <name> --to-revisions=<previous>=100`.".into(),
        ),
        "ecs-fargate" => (
            format!("1. Create the cluster `{n}`, an ALB target group per public service, private subnets and security groups; fill them into the JSON files (see README.txt).\n2. Store each secret in Secrets Manager as `{n}/NAME`.\n3. `aws ecs register-task-definition --cli-input-json file://<service>.taskdef.json` and `aws ecs create-service --cli-input-json file://<service>.service.json`."),
            format!("`aws ecs update-service --cluster {n} --service <service> --desired-count N`, or Application Auto Scaling on the service."),
            format!("The deployment circuit breaker rolls a failing deployment back by itself; by hand: `aws ecs update-service --cluster {n} --service <service> --task-definition {n}-<service>:<previous revision>`."),
        ),
        "render" => (
            "1. In the Render dashboard, New → Blueprint, and point it at the repository holding `render.yaml`.\n2. Fill in every variable marked `sync: false` when Render asks; generated secrets are created by Render.".into(),
            "Edit `numInstances` or `scaling` in render.yaml and sync the Blueprint. Services with a disk stay at one instance.".into(),
            "Dashboard → service → Events → Rollback to a previous deploy.".into(),
        ),
        "railway" => (
            "1. Create a project and one service per folder; set each service's config-as-code path to `<service>/railway.json`.\n2. Add the databases as Railway services and set the secrets as service variables.".into(),
            "Change `numReplicas` in railway.json (services with volumes cannot have replicas).".into(),
            "Deployments → the previous deployment → Redeploy.".into(),
        ),
        "heroku" => (
            "1. `heroku create APP --stack container` and add the add-ons in app.json (`heroku addons:create ...`).\n2. Set secrets with `heroku config:set NAME=...`.\n3. `git push heroku main` builds with heroku.yml.".into(),
            "`heroku ps:scale web=N`.".into(),
            "`heroku releases` then `heroku rollback vNN`.".into(),
        ),
        "app-runner" => (
            "App Runner is closed to new customers since 2026-04-30; existing accounts: push images to ECR, store secrets in Secrets Manager, then `aws apprunner create-service --cli-input-json file://<service>.apprunner-service.json`.".into(),
            "Attach an auto scaling configuration (`aws apprunner create-auto-scaling-configuration`).".into(),
            "Redeploy the previous image tag with `aws apprunner update-service`.".into(),
        ),
        "aci" => (
            "1. `az group create -n RG -l eastus`.\n2. Export each secret in the shell, then `envsubst < aci.yaml > /tmp/aci.yaml && az container create -g RG --file /tmp/aci.yaml` (secure values never touch the repository).".into(),
            "A container group does not scale out; run more groups behind a load balancer, or move to Container Apps.".into(),
            "Re-run `az container create` with the previous image tags.".into(),
        ),
        "vercel" => (
            "1. `vercel link`, then set secrets with `vercel env add NAME production`.\n2. `vercel deploy --prod`.".into(),
            "Functions scale by themselves; raise `maxDuration` or `memory` in vercel.json if requests need more.".into(),
            "`vercel rollback` to the previous production deployment.".into(),
        ),
        "do-app-platform" => (
            "1. Create the managed database clusters named in `databases` (production databases need an existing cluster).\n2. `doctl apps create --spec .do/app.yaml`, then set every SECRET variable's value in the console or with `doctl apps update`.".into(),
            "Change `instance_count` or `instance_size_slug` and `doctl apps update <id> --spec .do/app.yaml`.".into(),
            "`doctl apps list-deployments <id>` and redeploy the previous one from the console (Deployments → Rollback).".into(),
        ),
        _ => (
            "1. On a host with Docker Engine and the Compose plugin, copy this folder and export each secret in the shell (see `secrets.env.example`).\n2. From the repository root: `docker compose --project-directory . -f deploy/compose/compose.yaml up -d --wait` — build contexts resolve from the root, and services start in dependency order once each health check passes.\n3. Put TLS in front (the VM target's cloud-init sets up Caddy) and open only ports 80/443.".to_string(),
            "`docker compose up -d --scale <service>=N` for stateless services (their published ports must then move behind a proxy).".to_string(),
            format!("Set the previous image tags and `docker compose up -d`; keep the last tags in your CI history. `docker compose -p {n} ps` shows what runs."),
        ),
    }
}

pub fn render(
    app: &App,
    generator: &str,
    target_name: &str,
    placement: &Placement,
    estimate: &Estimate,
) -> GeneratedFile {
    let (deploy, scale, rollback) = match generator {
        "vm" => vm_steps(app, placement),
        _ => steps(app, generator),
    };
    let mut md = format!(
        "<!-- Generated by deployment-manager {} from {} {}; edit app.yaml and regenerate. -->\n# Deploying {} to {target_name}\n\n",
        env!("CARGO_PKG_VERSION"),
        app.name,
        app.version.as_deref().unwrap_or("(unversioned)"),
        app.name
    );
    md.push_str(&placement_section(placement, estimate));
    md.push_str(&format!("\n## Steps\n{deploy}\n\n"));
    md.push_str(&release_section(app, generator));
    md.push_str(&format!("Also move `.github/workflows/deploy-{generator}.yml` to the repository's `.github/workflows/` and keep this folder at `deploy/{generator}/`: the workflow builds, pushes and deploys on every push to `main`.\n\n"));
    md.push_str("## Secrets to set\n");
    let secrets = secrets_list(app);
    if secrets.is_empty() {
        md.push_str("None.\n");
    }
    for s in &secrets {
        let how = match s.class {
            "per_install_generated" => "generate a random value (e.g. `openssl rand -hex 32`)",
            "infrastructure" => "the connection string of the database or service it names",
            "remote_fetch" => "fetched from your secret store at deploy time",
            _ => "ask its owner (an API key or token)",
        };
        md.push_str(&format!(
            "- `{}` ({}; used by {}): {how}\n",
            s.name,
            s.class,
            s.used_by.join(", ")
        ));
    }
    md.push_str(&graph_section(app, generator));
    md.push_str(&format!(
        "\n## Scaling\n{scale}\n\n## Rolling back\n{rollback}\n\n## Backups and restore\n"
    ));
    let stateful: Vec<(&String, &str)> = app
        .dependencies
        .iter()
        .filter(|(_, d)| d.runs_as_container())
        .map(|(n, d)| (n, d.kind.as_str()))
        .collect();
    if stateful.is_empty()
        && app.dependencies.values().all(|d| d.managed_by.is_none())
        && app
            .services
            .values()
            .all(|s| s.persistent_volumes().next().is_none())
    {
        md.push_str("The app keeps no data of its own here.\n");
    }
    for (n, kind) in &stateful {
        let (dump, restore) = match *kind {
            "postgres" => (
                "pg_dump -Fc -U postgres > backup.dump",
                "pg_restore -U postgres -d postgres --clean backup.dump",
            ),
            "mysql" | "mariadb" => (
                "mysqldump --all-databases > backup.sql",
                "mysql < backup.sql",
            ),
            "mongodb" => (
                "mongodump --archive=backup.archive",
                "mongorestore --archive=backup.archive",
            ),
            "redis" | "valkey" => (
                "redis-cli --rdb backup.rdb",
                "stop the server, copy backup.rdb to its data folder as dump.rdb, start it",
            ),
            _ => (
                "archive its data volume (stop writes first)",
                "restore the archive into an empty volume",
            ),
        };
        md.push_str(&format!("- `{n}` ({kind}): nightly `{dump}`, kept off the host; restore with `{restore}`. Test a restore into a scratch instance every month.\n"));
    }
    for (n, d) in &app.dependencies {
        let Some(offering) = &d.managed_by else {
            continue;
        };
        let export = match d.kind.as_str() {
            "postgres" => "pg_dump -Fc \"$DATABASE_URL\" > backup.dump",
            "mysql" | "mariadb" => {
                "mysqldump --single-transaction -h <host> -P <port> -u <user> -p --all-databases > backup.sql"
            }
            "redis" | "valkey" => "redis-cli -u \"$REDIS_URL\" --rdb backup.rdb",
            _ => "the provider's export",
        };
        md.push_str(&format!("- `{n}` ({}, {offering}): the provider takes the backups; keep a copy off the provider too, e.g. nightly `{export}` against its address.\n", d.kind));
    }
    for (n, s) in &app.services {
        for v in s.persistent_volumes() {
            md.push_str(&format!("- `{n}` volume `{}` at `{}`: nightly archive of the volume; restore by unpacking into a fresh volume before starting the service.\n", v.name, v.path));
        }
    }
    md.push_str("\n## Troubleshooting\n");
    md.push_str("- **\"No Docker daemon\" / \"Cannot connect to the Docker daemon\"**: a service that starts containers is running where no daemon exists. On Kubernetes it must use the Jobs runtime (`SESSION_RUNTIME=kubernetes-jobs`); on a VM start Docker (`systemctl start docker`).\n");
    md.push_str("- **\"permission denied\" on the Docker socket**: the app talks to `docker-proxy` (`DOCKER_HOST=tcp://docker-proxy:2375`), never to the socket itself; check the proxy is running and allows the call.\n");
    md.push_str("- **Pods stuck in CrashLoopBackOff with read-only filesystem errors**: the root filesystem is read-only by design; add the path the app writes to as an `emptyDir` (or a volume in app.yaml) and regenerate.\n");
    md.push_str("- **Health checks fail right after start**: raise `health.start_period` in app.yaml; the deploy waits for it before routing traffic.\n");
    md.push_str("- **The site returns 404 or the wrong service**: check the host in app.yaml `domain` and the paths of the HTTPRoutes in `gateway.yaml` (or `ingress.yaml`); `kubectl -n <namespace> describe httproute` shows whether the Gateway accepted each route.\n");
    GeneratedFile::new("DEPLOY.md", md)
}

/// Who calls whom, and how this target keeps other traffic out.
fn graph_section(app: &App, generator: &str) -> String {
    let graph = Graph::of(app);
    let mut md = String::from("\n## Who talks to whom\n");
    if graph.edges.is_empty() {
        md.push_str("The app's services call none of each other.\n");
    }
    for e in graph.edges.iter().filter(|e| !graph.open.contains(&e.from)) {
        let on = match &e.reach {
            Reach::AnyPort => "any port".to_string(),
            Reach::Ports(p) => p
                .iter()
                .map(|p| format!("{}{}", p.port, if p.udp { "/udp" } else { "" }))
                .collect::<Vec<_>>()
                .join(", "),
        };
        md.push_str(&format!("- `{}` → `{}` on {on}\n", e.from, e.to));
    }
    for open in &graph.open {
        md.push_str(&format!("- `{open}` → every service of the app: its peers are read from somewhere the description does not hold, so it keeps the reach it had (list its calls under `connects_to` in app.yaml to narrow it)\n"));
    }
    let how = match generator {
        "kubernetes" => "NetworkPolicies allow exactly these calls, on these ports, plus DNS and outbound HTTPS; everything else between pods is denied.".to_string(),
        "compose" | "swarm" | "vm" => {
            let layout = graph.networks(app);
            if layout.shared {
                format!("The app has more called services than {} networks, so they share one `backend` network: every service can reach every other, as on Compose's default network.", crate::analyse::graph::MAX_NETWORKS)
            } else {
                "Each called service has a network (`to-<service>`) that it and its callers join, so these calls connect and services that share no network cannot reach each other. Networks have no direction or port: two callers of the same service can also reach each other.".to_string()
            }
        }
        "fly" => format!("Each service is its own Fly app, so env values that name a peer point at `{}-<peer>.internal`, its address on the organization's private network. Fly does not isolate apps of one organization from each other.", app.name),
        "render" => "Values that are a peer's address reference it (`fromService`), since a private service's host carries a suffix only Render knows. Private services are reachable from the account's other services in the same region, not from the internet.".to_string(),
        "aci" => "All containers run in one container group and share its network: env values that name a peer point at `localhost`.".to_string(),
        "do-app-platform" => "Components reach each other by name on their internal ports; nothing outside the app can.".to_string(),
        "railway" => "Services reach each other on the project's private network as `<service>.railway.internal`: set values that name a peer to `${{<service>.RAILWAY_PRIVATE_DOMAIN}}` (with the port) in each service's variables.".to_string(),
        _ => "This platform does not resolve a peer by its bare name: set values that name a peer (such as `host:port`) to the peer's address on the platform (its URL or private host). Nothing isolates the services of one app from each other.".to_string(),
    };
    md.push_str(&format!("\n{how}\n"));
    md
}

/// What to create, sized and counted, with each resource's monthly price:
/// the lines of the estimate for this very placement.
fn placement_section(placement: &Placement, estimate: &Estimate) -> String {
    let mut md = format!(
        "## What to create ({} users, {} deploys)\nSized by `deployment-manager estimate-cost --target {} --users {}`; `placement.json` holds the same in machine-readable form.\n\n| Resource | Quantity | Monthly |\n|---|---|---|\n",
        placement.users,
        placement.strategy.as_str(),
        placement.target,
        placement.users
    );
    for l in &estimate.lines {
        let monthly = if l.price_not_found {
            "not priced".to_string()
        } else {
            format!("${:.2}", l.monthly)
        };
        md.push_str(&format!(
            "| {} | {} {} | {monthly} |\n",
            l.name, l.quantity, l.unit
        ));
    }
    md.push_str(&format!(
        "| **Total** | | **{}${:.2}** |\n",
        if estimate.complete { "" } else { "≥ " },
        estimate.total
    ));
    md.push('\n');
    for d in &placement.dependencies {
        if let Hosting::Managed { offering, .. } = &d.hosting {
            md.push_str(&format!("\n- `{}` ({}) is not a container here: create {} and put its address in the secrets of the services that call it (a setting that named `{}` became a secret of the same name). On Kubernetes its callers' NetworkPolicy allows any outside address, since the offering's address and port are known only once it exists: narrow it to them.", d.name, d.kind, offering.item, d.name));
        }
    }
    if let Some(why) = &placement.unplaceable {
        md.push_str(&format!("\n**No node size fits**: {why}."));
    }
    md.push('\n');
    md
}

/// The VM steps for the placement's layout: one VM, identical VMs behind
/// a load balancer, or VMs joined into a swarm.
fn vm_steps(app: &App, placement: &Placement) -> (String, String, String) {
    let n = &app.name;
    let (count, size) = placement
        .nodes
        .as_ref()
        .map_or((1, "a VM".to_string()), |p| {
            (p.count, p.offering.item.clone())
        });
    match placement.layout {
        Layout::HostsBehindLoadBalancer => (
            format!("1. Create {count} VMs of size {size} (Ubuntu 24.04), each with `cloud-init.yaml` as user data, in one private network.\n2. Create the load balancer: it terminates TLS for the domain, forwards HTTP to port 80 of every VM and checks each VM's health on `/`. Point the domain's DNS at the load balancer.\n3. On each VM fill `/opt/{n}/secrets.env` (NAME=value per line), then `systemctl start {n}`. Only ports 22 and 80 are open; every VM runs the same stateless stack."),
            format!("Add a VM from the same `cloud-init.yaml` and attach it to the load balancer; `deployment-manager plan` shows when {count} VMs stop being enough."),
            format!("On each VM in turn: set the previous image tags in `/opt/{n}/compose.yaml` and `systemctl restart {n}`; the load balancer skips a VM while its health check fails."),
        ),
        Layout::Swarm => (
            format!("1. Create {count} VMs of size {size} (Ubuntu 24.04), each with `cloud-init.yaml` as user data, in one private network. Put a load balancer in front that forwards HTTP(S) to every VM (Swarm publishes the public ports on every node) and point the domain's DNS at it.\n2. On the first VM: `docker swarm init --advertise-addr <its private IP>`; on each other VM: `docker swarm join --token <worker token> <first VM's private IP>:2377`.\n3. Label the node that keeps each stateful service's volume: `docker node update --label-add {n}.<service>=true <node>` (`stack.yaml` pins those services with that label).\n4. Create each secret once: `printf %s \"$VALUE\" | docker secret create NAME -`, then `docker stack deploy --detach=false -c /opt/{n}/stack.yaml {n}`."),
            format!("`docker service scale {n}_<service>=N`; add nodes with `docker swarm join`."),
            format!("`docker service rollback {n}_<service>`; failed updates roll back by themselves (`failure_action: rollback`)."),
        ),
        _ => (
            format!("1. Create one VM of size {size} (Ubuntu 24.04) with `cloud-init.yaml` as user data, and point the domain's DNS at it.\n2. SSH in, fill `/opt/{n}/secrets.env` (NAME=value per line), then `systemctl start {n}`.\n3. Caddy obtains the TLS certificate on first request; only ports 22, 80 and 443 are open."),
            "Resize the VM for more headroom; for more than one VM, move to the Swarm or Kubernetes target (`deployment-manager plan` shows when).".into(),
            format!("Set the previous image tags in `/opt/{n}/compose.yaml` and `systemctl restart {n}`."),
        ),
    }
}

/// `placement.json`: the placement and the price of each of its resources.
pub fn placement_json(placement: &Placement, estimate: &Estimate) -> GeneratedFile {
    let lines: Vec<serde_json::Value> = estimate
        .lines
        .iter()
        .map(|l| {
            serde_json::json!({
                "resource": l.name,
                "category": l.category,
                "price_id": l.price_id,
                "quantity": l.quantity,
                "unit": l.unit,
                "unit_price": l.unit_price,
                "monthly": if l.price_not_found { None } else { Some(l.monthly) },
            })
        })
        .collect();
    let doc = serde_json::json!({
        "generated_by": format!("deployment-manager {}", env!("CARGO_PKG_VERSION")),
        "placement": placement,
        "monthly": {
            "currency": estimate.currency,
            "total": estimate.total,
            "complete": estimate.complete,
            "lines": lines,
        },
    });
    let mut text = serde_json::to_string_pretty(&doc).expect("placements serialize");
    text.push('\n');
    GeneratedFile::new("placement.json", text)
}

/// How the release command (migrations) runs on this target: natively
/// where the platform has a release phase, else the exact commands to run
/// before each rollout.
fn release_section(app: &App, generator: &str) -> String {
    let Some(r) = &app.release else {
        return String::new();
    };
    let (svc, line, t) = (&r.service, r.line(), r.timeout_s());
    let ns = &app.name;
    let cmd = serde_json::to_string(&r.command).unwrap_or_default();
    let first = r.command.first().cloned().unwrap_or_default();
    let rest = r
        .command
        .iter()
        .skip(1)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    let how = match generator {
        "compose" | "vm" => format!("`{svc}-release` in compose.yaml runs it on every `docker compose up -d`; `{svc}` starts only after it exits 0 (`service_completed_successfully`)."),
        "swarm" => format!("A stack has no one-off services. Before each `docker stack deploy`, run it as a job on the stack's network and wait for it: `docker service create --name {ns}-release --mode replicated-job --restart-condition none --network {ns}_default <{svc}'s image> {line}`, then check `docker service ps {ns}-release` shows Complete (`deployment-manager deploy` does this itself)."),
        "kubernetes" => format!("`release-job.yaml` is its Job (not in the kustomization). Before each `kubectl apply -k .`: `kubectl -n {ns} delete job {ns}-release --ignore-not-found && kubectl apply -f release-job.yaml && kubectl -n {ns} wait --for=condition=complete --timeout={t}s job/{ns}-release`. On the first deploy, apply the namespace, secrets, policies and dependencies first."),
        "fly" => format!("`release_command` in {svc}'s fly.toml: Fly runs it in a temporary Machine of the new image, with the app's secrets, before any Machine is updated; a non-zero exit stops the deploy."),
        "render" => format!("`preDeployCommand` of {svc} in render.yaml: Render runs it after the build, before the new instances start."),
        "railway" => format!("`deploy.preDeployCommand` in {svc}/railway.json runs before the new deployment starts."),
        "heroku" => "The `release` section of heroku.yml: Heroku's release phase runs it in a one-off dyno before the new release takes traffic.".to_string(),
        "do-app-platform" => format!("The PRE_DEPLOY job `{svc}-release` in the app spec runs it after the build and before the new components serve."),
        "ecs-fargate" => format!("Before each service update, run it as a one-off task of {svc}'s task definition and check its exit code: `aws ecs run-task --cluster <cluster> --launch-type FARGATE --task-definition {ns}-{svc} --network-configuration <the service's> --overrides '{{\"containerOverrides\":[{{\"name\":\"{svc}\",\"command\":{cmd}}}]}}'`, then `aws ecs wait tasks-stopped` and `aws ecs describe-tasks` (exitCode 0)."),
        "cloud-run" => format!("As a Cloud Run job, before each `gcloud run services replace`: `gcloud run jobs deploy {svc}-release --image <{svc}'s image> --command {first} --args {rest} --task-timeout {t}s --max-retries 0 && gcloud run jobs execute {svc}-release --wait`."),
        _ => format!("This platform has no release phase: run `{line}` with {svc}'s image and settings against the production data before each deploy, and deploy only when it exits 0."),
    };
    format!(
        "## Release command\n`{line}` (with {svc}'s image, settings and secrets; timeout {t}s) runs once per release, before any traffic moves. {how} A rollback does not undo what it changed.\n\n"
    )
}
