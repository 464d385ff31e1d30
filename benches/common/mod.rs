//! Shared by the benchmarks: a generated app of `n` services.

use deployment_manager::describe::app::*;
use deployment_manager::describe::load_path;
use deployment_manager::describe::units::{Cpu, Size};

pub fn big_app(n: usize) -> App {
    let mut app = App::new("big");
    for i in 0..n {
        let svc = Service {
            image: Some(format!("ghcr.io/acme/svc-{i}:1.0")),
            ports: vec![Port {
                port: 8000 + (i % 1000) as u16,
                protocol: if i % 7 == 0 {
                    Protocol::Websocket
                } else {
                    Protocol::Http
                },
                public: i % 10 == 0,
                published: None,
            }],
            resources: Some(Resources {
                cpu: Some(Cpu(100 + (i as u32 % 5) * 100)),
                memory: Some(Size::mib(128 + (i as u64 % 4) * 128)),
                ..Resources::default()
            }),
            replicas: Some(1 + (i as u32 % 3)),
            depends_on: if i > 0 {
                vec![format!("svc-{}", i - 1)]
            } else {
                vec![]
            },
            traits: Traits {
                background_worker: i % 13 == 0,
                ..Traits::default()
            },
            ..Service::default()
        };
        app.services.insert(format!("svc-{i}"), svc);
    }
    for (name, kind) in [
        ("db", "postgres"),
        ("cache", "redis"),
        ("vectors", "qdrant"),
        ("queue", "rabbitmq"),
    ] {
        app.dependencies.insert(
            name.into(),
            Dependency {
                kind: kind.into(),
                managed: true,
                ..Dependency::default()
            },
        );
    }
    app.usage = Some(Usage {
        users: Some(1000),
        ..Usage::default()
    });
    app
}

/// Every example app by folder name, sorted, then the 1,000-service app.
pub fn apps() -> Vec<(String, App)> {
    let mut apps: Vec<(String, App)> = std::fs::read_dir("examples")
        .expect("run from the repository root")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("app.yaml").is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                load_path(&p.join("app.yaml"), &[]).unwrap().app,
            )
        })
        .collect();
    apps.sort_by(|a, b| a.0.cmp(&b.0));
    apps.push(("generated-1000-services".into(), big_app(1000)));
    apps
}
