//! AWS ECS on Fargate: a task definition (RegisterTaskDefinition input) and
//! a service (CreateService input) per service, hardened (read-only root,
//! non-root user, capabilities dropped), secrets from Secrets Manager by
//! ARN, and a deployment circuit breaker that rolls back by itself. Fargate
//! has no Docker socket, so sessions run as one task each through RunTask:
//! a session task definition and an IAM policy limited to it.

use super::compose::image_of;
use super::{GeneratedFile, header};
use crate::describe::app::{App, Protocol, Service};
use crate::describe::secrets_list;
use serde_json::{Value, json};

/// The smallest valid Fargate (cpu units, memory MiB) pair for the request.
pub fn fargate_size(cpu_cores: f64, mem_mib: u64) -> (u32, u64) {
    const TABLE: [(u32, u64, u64); 5] = [
        (256, 512, 2048),
        (512, 1024, 4096),
        (1024, 2048, 8192),
        (2048, 4096, 16384),
        (4096, 8192, 30720),
    ];
    for (cpu, lo, hi) in TABLE {
        if (cpu as f64) >= cpu_cores * 1024.0 - 1e-6 && mem_mib <= hi {
            let mem = mem_mib.max(lo).div_ceil(1024) * 1024;
            return (
                cpu,
                mem.clamp(lo, hi).max(if cpu == 256 { 512 } else { lo }),
            );
        }
    }
    (4096, mem_mib.clamp(8192, 30720).div_ceil(1024) * 1024)
}

fn container(app: &App, name: &str, s: &Service) -> Value {
    let secrets: Vec<Value> = secrets_list(app)
        .into_iter()
        .filter(|x| x.used_by.iter().any(|u| u == name))
        .map(|x| json!({"name": x.name, "valueFrom": format!("arn:aws:secretsmanager:us-east-1:ACCOUNT_ID:secret:{}/{}", app.name, x.name)}))
        .collect();
    let mut c = json!({
        "name": name,
        "image": image_of(app, name, s),
        "essential": true,
        "readonlyRootFilesystem": true,
        "user": "10001:10001",
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": true},
        "mountPoints": [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": false}],
        "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": format!("/ecs/{}", app.name), "awslogs-region": "us-east-1", "awslogs-stream-prefix": name}},
    });
    if !s.ports.is_empty() {
        c["portMappings"] = json!(s.ports.iter().map(|p| json!({"containerPort": p.port, "protocol": if p.protocol == Protocol::Udp { "udp" } else { "tcp" }})).collect::<Vec<_>>());
    }
    if !s.command.is_empty() {
        c["command"] = json!(s.command);
    }
    if !s.env.is_empty() {
        c["environment"] = json!(
            s.env
                .iter()
                .map(|(k, v)| json!({"name": k, "value": v}))
                .collect::<Vec<_>>()
        );
    }
    if !secrets.is_empty() {
        c["secrets"] = Value::Array(secrets);
    }
    if let Some(h) = &s.health {
        let test = super::compose::health_test(h, s.ports.first().map(|p| p.port));
        c["healthCheck"] = json!({
            "command": test,
            "interval": h.interval.map_or(10, |d| d.0.clamp(5, 300)),
            "timeout": h.timeout.map_or(5, |d| d.0.clamp(2, 60)),
            "retries": h.retries.unwrap_or(3).clamp(1, 10),
            "startPeriod": h.start_period.map_or(10, |d| d.0.min(300)),
        });
    }
    c
}

pub fn render(app: &App) -> Vec<GeneratedFile> {
    let mut out = Vec::new();
    let note = header(app, "//");
    for (name, s) in &app.services {
        let (cpu, mem) = fargate_size(
            s.resources
                .as_ref()
                .and_then(|r| r.cpu_limit)
                .map_or(s.cpu().cores(), |c| c.cores()),
            s.resources
                .as_ref()
                .and_then(|r| r.memory_limit)
                .map_or(s.memory().as_mib().round() as u64, |m| {
                    m.as_mib().round() as u64
                }),
        );
        let mut c = container(app, name, s);
        if s.traits.spawns_containers {
            let runtime = json!({"name": "SESSION_RUNTIME", "value": "ecs-run-task"});
            match c.get_mut("environment").and_then(Value::as_array_mut) {
                Some(env) => env.push(runtime),
                None => c["environment"] = json!([runtime]),
            }
        }
        let taskdef = json!({
            "family": format!("{}-{name}", app.name),
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": cpu.to_string(),
            "memory": mem.to_string(),
            "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
            "executionRoleArn": "arn:aws:iam::ACCOUNT_ID:role/ecsTaskExecutionRole",
            "taskRoleArn": format!("arn:aws:iam::ACCOUNT_ID:role/{}-{name}", app.name),
            "containerDefinitions": [c],
            "volumes": [{"name": "tmp"}],
        });
        out.push(GeneratedFile::new(
            format!("{name}.taskdef.json"),
            serde_json::to_string_pretty(&taskdef).expect("plain data") + "\n",
        ));
        let mut service = json!({
            "cluster": app.name,
            "serviceName": name,
            "taskDefinition": format!("{}-{name}", app.name),
            "desiredCount": s.min_replicas(),
            "launchType": "FARGATE",
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}, "maximumPercent": 200, "minimumHealthyPercent": 100},
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-PRIVATE_A", "subnet-PRIVATE_B"], "securityGroups": [format!("sg-{}-{name}", app.name)], "assignPublicIp": "DISABLED"}},
            "enableExecuteCommand": false,
            "propagateTags": "SERVICE",
        });
        if let Some(p) = s.ports.iter().find(|p| p.public) {
            service["loadBalancers"] = json!([{"targetGroupArn": format!("arn:aws:elasticloadbalancing:us-east-1:ACCOUNT_ID:targetgroup/{}-{name}/ID", app.name), "containerName": name, "containerPort": p.port}]);
            service["healthCheckGracePeriodSeconds"] = json!(
                s.health
                    .as_ref()
                    .and_then(|h| h.start_period)
                    .map_or(30, |d| d.0.max(30))
            );
        }
        out.push(GeneratedFile::new(
            format!("{name}.service.json"),
            serde_json::to_string_pretty(&service).expect("plain data") + "\n",
        ));
    }
    for (name, w) in &app.sessions {
        let (cpu, mem) = fargate_size(
            w.cpu.map_or(0.25, |c| c.cores()),
            w.memory.map_or(512, |m| m.as_mib().round() as u64),
        );
        let c = json!({
            "name": "session", "image": w.image, "essential": true,
            "readonlyRootFilesystem": true, "user": "10001:10001",
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": true},
            "stopTimeout": 10,
            "mountPoints": [{"sourceVolume": "work", "containerPath": "/tmp", "readOnly": false}],
        });
        let taskdef = json!({
            "family": format!("{}-{name}", app.name),
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": cpu.to_string(), "memory": mem.to_string(),
            "executionRoleArn": "arn:aws:iam::ACCOUNT_ID:role/ecsTaskExecutionRole",
            "containerDefinitions": [c],
            "volumes": [{"name": "work"}],
        });
        out.push(GeneratedFile::new(
            format!("session-{name}.taskdef.json"),
            serde_json::to_string_pretty(&taskdef).expect("plain data") + "\n",
        ));
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "RunSessionTasks", "Effect": "Allow", "Action": ["ecs:RunTask", "ecs:StopTask", "ecs:DescribeTasks"], "Resource": "*",
             "Condition": {"ArnEquals": {"ecs:task-definition": format!("arn:aws:ecs:us-east-1:ACCOUNT_ID:task-definition/{}-{name}", app.name)}}},
            {"Sid": "PassExecutionRole", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::ACCOUNT_ID:role/ecsTaskExecutionRole"}
        ]});
        out.push(GeneratedFile::new(
            format!("session-{name}.iam-policy.json"),
            serde_json::to_string_pretty(&policy).expect("plain data") + "\n",
        ));
    }
    // JSON has no comments: provenance and placeholders go in a README.
    let mut readme = note.replace("// ", "");
    readme.push_str("Replace ACCOUNT_ID, subnet-PRIVATE_A/B, the security groups and the target group ARNs, then:\n\n");
    readme.push_str("    aws ecs register-task-definition --cli-input-json file://<service>.taskdef.json\n    aws ecs create-service --cli-input-json file://<service>.service.json\n");
    if !app.sessions.is_empty() {
        readme.push_str("\nFargate has no Docker socket: the app starts each session with `ecs:RunTask` on the session task definition, allowed by the attached session-*.iam-policy.json and nothing else. Sessions get no public IP and a security group without egress.\n");
    }
    out.push(GeneratedFile::new("README.txt", readme));
    out
}
