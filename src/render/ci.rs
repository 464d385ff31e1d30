//! GitHub Actions: one workflow per target that builds and pushes the app's
//! images, then deploys with the target's own CLI. Secrets come from the
//! repository's secret store; permissions are read-only unless needed.

use super::yaml::to_yaml;
use super::{GeneratedFile, header};
use crate::describe::app::App;
use crate::describe::secrets_list;
use serde_json::{Map, Value, json};

/// Deploy steps and the repository secrets they read, per generator.
fn deploy_steps(app: &App, generator: &str) -> (Vec<Value>, Vec<&'static str>) {
    let name = &app.name;
    match generator {
        "kubernetes" => (
            vec![
                json!({"name": "Install kubectl", "uses": "azure/setup-kubectl@v4", "with": {"version": "v1.31.4"}}),
                json!({"name": "Apply manifests", "env": {"KUBECONFIG_DATA": "${{ secrets.KUBECONFIG }}"}, "run": format!("umask 077\necho \"$KUBECONFIG_DATA\" > \"$RUNNER_TEMP/kubeconfig\"\nexport KUBECONFIG=\"$RUNNER_TEMP/kubeconfig\"\nkubectl apply -k deploy/kubernetes\nkubectl -n {name} rollout status deployment --timeout=5m")}),
            ],
            vec!["KUBECONFIG"],
        ),
        "fly" => (
            vec![
                json!({"name": "Install flyctl", "uses": "superfly/flyctl-actions/setup-flyctl@1.5"}),
                json!({"name": "Deploy", "env": {"FLY_API_TOKEN": "${{ secrets.FLY_API_TOKEN }}"}, "run": app.services.keys().map(|s| format!("flyctl deploy --config deploy/fly/{s}/fly.toml --remote-only")).collect::<Vec<_>>().join("\n")}),
            ],
            vec!["FLY_API_TOKEN"],
        ),
        "cloud-run" => (
            vec![
                json!({"name": "Authenticate to Google Cloud", "uses": "google-github-actions/auth@v2", "with": {"credentials_json": "${{ secrets.GCP_CREDENTIALS }}"}}),
                json!({"name": "Set up gcloud", "uses": "google-github-actions/setup-gcloud@v2"}),
                json!({"name": "Deploy services", "run": app.services.keys().map(|s| format!("gcloud run services replace deploy/cloud-run/{s}.service.yaml --region us-central1")).collect::<Vec<_>>().join("\n")}),
            ],
            vec!["GCP_CREDENTIALS"],
        ),
        "do-app-platform" => (
            vec![
                json!({"name": "Install doctl", "uses": "digitalocean/action-doctl@v2", "with": {"token": "${{ secrets.DIGITALOCEAN_ACCESS_TOKEN }}"}}),
                json!({"name": "Update the app", "env": {"APP_ID": "${{ secrets.DO_APP_ID }}"}, "run": "doctl apps update \"$APP_ID\" --spec deploy/do-app-platform/.do/app.yaml --wait"}),
            ],
            vec!["DIGITALOCEAN_ACCESS_TOKEN", "DO_APP_ID"],
        ),
        "ecs-fargate" => (
            vec![
                json!({"name": "Configure AWS credentials", "uses": "aws-actions/configure-aws-credentials@v4", "with": {"role-to-assume": "${{ secrets.AWS_DEPLOY_ROLE_ARN }}", "aws-region": "us-east-1"}}),
                json!({"name": "Register and roll out", "run": app.services.keys().map(|s| format!("aws ecs register-task-definition --cli-input-json file://deploy/ecs-fargate/{s}.taskdef.json\naws ecs update-service --cluster {name} --service {s} --task-definition {name}-{s} --force-new-deployment")).chain(std::iter::once(format!("aws ecs wait services-stable --cluster {name} --services {}", app.services.keys().cloned().collect::<Vec<_>>().join(" ")))).collect::<Vec<_>>().join("\n")}),
            ],
            vec!["AWS_DEPLOY_ROLE_ARN"],
        ),
        "render" => (
            vec![
                json!({"name": "Trigger the Render deploy hooks", "env": {"RENDER_DEPLOY_HOOKS": "${{ secrets.RENDER_DEPLOY_HOOKS }}"}, "run": "for hook in $RENDER_DEPLOY_HOOKS; do wget -q -O - --post-data '' \"$hook\"; done"}),
            ],
            vec!["RENDER_DEPLOY_HOOKS"],
        ),
        "railway" => (
            vec![
                json!({"name": "Deploy with the Railway CLI", "env": {"RAILWAY_TOKEN": "${{ secrets.RAILWAY_TOKEN }}"}, "run": app.services.keys().map(|s| format!("npx --yes @railway/cli@4 up --service {s} --detach")).collect::<Vec<_>>().join("\n")}),
            ],
            vec!["RAILWAY_TOKEN"],
        ),
        "heroku" => (
            vec![
                json!({"name": "Push to Heroku (heroku.yml builds the images)", "env": {"HEROKU_API_KEY": "${{ secrets.HEROKU_API_KEY }}"}, "run": format!("heroku stack:set container --app {name}\nheroku git:remote --app {name}\ngit push heroku HEAD:main")}),
            ],
            vec!["HEROKU_API_KEY"],
        ),
        "app-runner" => (
            vec![
                json!({"name": "Configure AWS credentials", "uses": "aws-actions/configure-aws-credentials@v4", "with": {"role-to-assume": "${{ secrets.AWS_DEPLOY_ROLE_ARN }}", "aws-region": "us-east-1"}}),
                json!({"name": "Start deployments", "env": {"SERVICE_ARNS": "${{ secrets.APPRUNNER_SERVICE_ARNS }}"}, "run": "for arn in $SERVICE_ARNS; do aws apprunner start-deployment --service-arn \"$arn\"; done"}),
            ],
            vec!["AWS_DEPLOY_ROLE_ARN", "APPRUNNER_SERVICE_ARNS"],
        ),
        "aci" => {
            let mut env = serde_json::Map::new();
            env.insert(
                "RESOURCE_GROUP".into(),
                json!("${{ secrets.AZURE_RESOURCE_GROUP }}"),
            );
            for s in secrets_list(app) {
                env.insert(
                    s.name.clone(),
                    json!(format!("${{{{ secrets.{} }}}}", s.name)),
                );
            }
            (
                vec![
                    json!({"name": "Log in to Azure", "uses": "azure/login@v2", "with": {"creds": "${{ secrets.AZURE_CREDENTIALS }}"}}),
                    json!({"name": "Create or update the container group", "env": env, "run": "umask 077\nenvsubst < deploy/aci/aci.yaml > \"$RUNNER_TEMP/aci.yaml\"\naz container create --resource-group \"$RESOURCE_GROUP\" --file \"$RUNNER_TEMP/aci.yaml\""}),
                ],
                vec!["AZURE_CREDENTIALS", "AZURE_RESOURCE_GROUP"],
            )
        }
        "vercel" => (
            vec![
                json!({"name": "Deploy to Vercel", "env": {"VERCEL_TOKEN": "${{ secrets.VERCEL_TOKEN }}", "VERCEL_ORG_ID": "${{ secrets.VERCEL_ORG_ID }}", "VERCEL_PROJECT_ID": "${{ secrets.VERCEL_PROJECT_ID }}"}, "run": "npx --yes vercel@39 deploy --prod --token \"$VERCEL_TOKEN\""}),
            ],
            vec!["VERCEL_TOKEN", "VERCEL_ORG_ID", "VERCEL_PROJECT_ID"],
        ),
        "swarm" => (
            vec![
                json!({"name": "Deploy the stack", "env": {"SSH_KEY": "${{ secrets.DEPLOY_SSH_KEY }}", "DEPLOY_HOST": "${{ secrets.DEPLOY_HOST }}"}, "run": format!("umask 077\nmkdir -p ~/.ssh\necho \"$SSH_KEY\" > ~/.ssh/id_ed25519\nssh-keyscan -H \"${{DEPLOY_HOST#*@}}\" >> ~/.ssh/known_hosts\nDOCKER_HOST=\"ssh://$DEPLOY_HOST\" docker stack deploy --detach=false --with-registry-auth -c deploy/swarm/stack.yaml {name}")}),
            ],
            vec!["DEPLOY_SSH_KEY", "DEPLOY_HOST"],
        ),
        _ => (
            vec![
                json!({"name": "Deploy with Compose", "env": {"SSH_KEY": "${{ secrets.DEPLOY_SSH_KEY }}", "DEPLOY_HOST": "${{ secrets.DEPLOY_HOST }}"}, "run": format!("umask 077\nmkdir -p ~/.ssh\necho \"$SSH_KEY\" > ~/.ssh/id_ed25519\nssh-keyscan -H \"${{DEPLOY_HOST#*@}}\" >> ~/.ssh/known_hosts\nDOCKER_HOST=\"ssh://$DEPLOY_HOST\" docker compose --project-name {name} --project-directory . -f deploy/{generator}/compose.yaml up -d --wait --remove-orphans")}),
            ],
            vec!["DEPLOY_SSH_KEY", "DEPLOY_HOST"],
        ),
    }
}

pub fn render(app: &App, generator: &str) -> GeneratedFile {
    let built: Vec<&String> = app
        .services
        .iter()
        .filter(|(_, s)| s.build.is_some())
        .map(|(n, _)| n)
        .collect();
    let mut jobs = Map::new();
    if !built.is_empty() {
        let mut steps = vec![
            json!({"uses": "actions/checkout@v4"}),
            json!({"uses": "docker/setup-buildx-action@v3"}),
            json!({"uses": "docker/login-action@v3", "with": {"registry": "ghcr.io", "username": "${{ github.actor }}", "password": "${{ secrets.GITHUB_TOKEN }}"}}),
        ];
        for n in &built {
            let b = app.services[*n].build.as_ref().expect("filtered on build");
            let file = b.dockerfile.clone().map_or_else(
                || format!("deploy/{generator}/dockerfiles/{n}.Dockerfile"),
                |d| format!("{}/{d}", b.context),
            );
            steps.push(json!({"name": format!("Build and push {n}"), "uses": "docker/build-push-action@v6", "with": {
                "context": b.context, "file": file, "push": true,
                "tags": format!("ghcr.io/${{{{ github.repository }}}}/{n}:${{{{ github.sha }}}}")
            }}));
        }
        jobs.insert("build".into(), json!({"runs-on": "ubuntu-24.04", "permissions": {"contents": "read", "packages": "write"}, "steps": steps}));
    }
    let (mut steps, needed) = deploy_steps(app, generator);
    steps.insert(0, json!({"uses": "actions/checkout@v4"}));
    let mut deploy = json!({"runs-on": "ubuntu-24.04", "environment": "production", "concurrency": {"group": format!("deploy-{}", app.name), "cancel-in-progress": false}, "steps": steps});
    if !built.is_empty() {
        deploy["needs"] = json!("build");
    }
    jobs.insert("deploy".into(), deploy);
    let wf = json!({
        "name": format!("deploy {} ({generator})", app.name),
        "on": {"push": {"branches": ["main"]}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "jobs": jobs,
    });
    let mut text = header(app, "#");
    let app_secrets: Vec<String> = secrets_list(app).into_iter().map(|s| s.name).collect();
    text.push_str(&format!(
        "# Repository secrets: {}; the app's own secrets ({}) are set on the target, not here.\n",
        needed.join(", "),
        if app_secrets.is_empty() {
            "none".into()
        } else {
            app_secrets.join(", ")
        }
    ));
    text.push_str(&to_yaml(&wf));
    GeneratedFile::new(format!(".github/workflows/deploy-{generator}.yml"), text)
}
