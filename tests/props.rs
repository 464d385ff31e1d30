//! Property tests: an app written out reads back the same, and no input makes
//! the parsers panic.

use deployment_manager::describe::app::*;
use deployment_manager::describe::compose::{ComposeOptions, import_compose};
use deployment_manager::describe::load::parse_app;
use deployment_manager::describe::units::{Cpu, Duration, Size};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9]{0,8}"
}

fn service() -> impl Strategy<Value = Service> {
    (
        "[a-z]{1,8}(/[a-z]{1,8})?:[0-9]\\.[0-9]",
        prop::collection::btree_set(1u16..65535, 0..3),
        prop::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", "[ -~]{0,12}", 0..3),
        1u32..4000,
        1u64..8192,
        prop::option::of(1u32..5),
        any::<bool>(),
        prop::option::of(1u64..7200),
    )
        .prop_map(
            |(image, ports, env, cpu, mem, replicas, ws, long)| Service {
                image: Some(image),
                ports: ports
                    .into_iter()
                    .map(|p| Port {
                        port: p,
                        protocol: if ws {
                            Protocol::Websocket
                        } else {
                            Protocol::Http
                        },
                        public: ws,
                        published: None,
                    })
                    .collect(),
                env: env.into_iter().collect(),
                resources: Some(Resources {
                    cpu: Some(Cpu(cpu)),
                    memory: Some(Size::mib(mem)),
                    cpu_limit: None,
                    memory_limit: None,
                }),
                replicas,
                health: Some(HealthCheck {
                    http: Some("/health".into()),
                    interval: Some(Duration(10)),
                    timeout: Some(Duration(2)),
                    ..HealthCheck::default()
                }),
                traits: Traits {
                    sticky_sessions: ws,
                    long_requests: long.map(Duration),
                    ..Traits::default()
                },
                ..Service::default()
            },
        )
}

fn app() -> impl Strategy<Value = App> {
    (
        name(),
        prop::collection::btree_map(name(), service(), 1..4),
        prop::option::of(1u32..100_000),
    )
        .prop_map(|(n, services, users)| {
            let mut a = App::new(&n);
            a.services = services.into_iter().collect();
            a.usage = users.map(|u| Usage {
                users: Some(u),
                ..Usage::default()
            });
            a
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn app_yaml_round_trips(a in app()) {
        let yaml = serde_saphyr::to_string(&a).unwrap();
        let back = parse_app("prop.yaml", &yaml).map_err(|e| TestCaseError::fail(format!("{e:?}\n{yaml}")))?;
        prop_assert_eq!(back, a);
    }

    #[test]
    fn app_parser_never_panics(s in "\\PC{0,400}") {
        let _ = parse_app("fuzz.yaml", &s);
    }

    #[test]
    fn compose_parser_never_panics(s in "(services:\n  [a-z]{1,4}:\n    (image|ports|environment|volumes|healthcheck|deploy): [\\PC]{0,40}\n){0,4}") {
        let _ = import_compose("fuzz.yml", &s, &ComposeOptions::default());
    }

    #[test]
    fn sizes_print_and_parse_back(b in 1u64..(1u64 << 44)) {
        let s = Size(b * 1024 * 1024);
        prop_assert_eq!(Size::parse(&s.to_string()).unwrap(), s);
    }

    #[test]
    fn durations_print_and_parse_back(d in 0u64..10_000_000) {
        prop_assert_eq!(Duration::parse(&Duration(d).to_string()).unwrap(), Duration(d));
    }
}
