//! The Docker-host planner without Docker: every strategy from four
//! starting points (nothing deployed, live on release 1, an unfinished
//! release 2 still routed, a warm blue-green colour), checked action by
//! action. The end-to-end tests prove the executor carries the same lists
//! out on real engines.

use deployment_manager::analyse::cost::Strategy;
use deployment_manager::deploy::docker_host::plan::{
    self, Action, Desired, HostState, Seen, app_container, target_addr,
};
use deployment_manager::deploy::spec::{AccessorySpec, ReleaseSpec, ServiceSpec};
use deployment_manager::deploy::strategy::Options;
use std::collections::BTreeMap;

const P: &str = "shop";

fn spec() -> ReleaseSpec {
    ReleaseSpec {
        services: vec![
            ServiceSpec {
                name: "web".into(),
                image: "web:2".into(),
                replicas: 2,
                port: Some(8080),
                public_port: Some(80),
                stop_grace: 10,
                ..ServiceSpec::default()
            },
            ServiceSpec {
                name: "worker".into(),
                image: "worker:2".into(),
                replicas: 1,
                stop_grace: 10,
                ..ServiceSpec::default()
            },
        ],
        accessories: vec![AccessorySpec {
            name: "db".into(),
            kind: "postgres".into(),
            image: "postgres:16".into(),
            ..AccessorySpec::default()
        }],
        app: None,
        release: None,
    }
}

fn app(service: &str, release: u32, replica: u32, running: bool) -> Seen {
    Seen {
        name: app_container(P, service, release, replica),
        role: "app".into(),
        service: service.into(),
        release: release.to_string(),
        running,
    }
}

fn infra() -> Vec<Seen> {
    let other = |name: String, role: &str, service: &str| Seen {
        name,
        role: role.into(),
        service: service.into(),
        release: String::new(),
        running: true,
    };
    vec![
        other(format!("dm-{P}-db"), "accessory", "db"),
        other(format!("dm-{P}-web-proxy"), "proxy", "web"),
    ]
}

fn routed(targets: &[(u32, u32)]) -> BTreeMap<String, Vec<(String, String)>> {
    let web = &spec().services[0];
    let mut v: Vec<(String, String)> = targets
        .iter()
        .map(|(rel, rep)| (rel.to_string(), target_addr(P, web, *rel, *rep)))
        .collect();
    v.sort();
    BTreeMap::from([("web".to_string(), v)])
}

fn nothing() -> HostState {
    HostState {
        host: "h1".into(),
        ..HostState::default()
    }
}

fn live_on_1() -> HostState {
    let mut containers = infra();
    containers.extend([
        app("web", 1, 0, true),
        app("web", 1, 1, true),
        app("worker", 1, 0, true),
    ]);
    HostState {
        host: "h1".into(),
        network: true,
        containers,
        routed: routed(&[(1, 0), (1, 1)]),
    }
}

/// A rolling deploy of release 2 died after its first replica joined.
fn unfinished_2() -> HostState {
    let mut h = live_on_1();
    h.containers
        .extend([app("web", 2, 0, true), app("worker", 2, 0, true)]);
    h.routed = routed(&[(1, 0), (1, 1), (2, 0)]);
    h
}

/// Blue-green went from 1 to 2 and kept 1 running, unrouted.
fn warm_1_live_2() -> HostState {
    let mut h = live_on_1();
    h.containers.extend([
        app("web", 2, 0, true),
        app("web", 2, 1, true),
        app("worker", 2, 0, true),
    ]);
    h.containers
        .retain(|c| c.name != app_container(P, "worker", 1, 0));
    h.routed = routed(&[(2, 0), (2, 1)]);
    h
}

/// Actions in short words: `start web r2.0`, `route web 1:1 2:1` (release:
/// weight), `stop web-r1-0`…
fn show(actions: &[Action]) -> Vec<String> {
    let short = |c: &str| c.trim_start_matches(&format!("dm-{P}-")).to_string();
    actions
        .iter()
        .filter_map(|a| {
            Some(match a {
                Action::CreateNetwork { .. } => "network".into(),
                Action::StartAccessory { accessory, .. } => format!("accessory {accessory}"),
                Action::EnsureProxy { service, .. } => format!("proxy {service}"),
                Action::StartReplica {
                    service,
                    release,
                    replica,
                    ..
                } => format!("start {service} r{release}.{replica}"),
                Action::AwaitReady {
                    service,
                    release,
                    replicas,
                    ..
                } => format!("ready {service} r{release} {replicas:?}"),
                Action::Route {
                    service,
                    routes,
                    hold,
                    ..
                } => {
                    let r: Vec<String> = routes
                        .iter()
                        .map(|r| format!("{}:{}", r.release, r.weight))
                        .collect();
                    if *hold {
                        format!("hold {service}")
                    } else {
                        format!("route {service} {}", r.join(" "))
                    }
                }
                Action::Stop { containers, .. } => format!(
                    "stop {}",
                    containers
                        .iter()
                        .map(|c| short(c))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Action::Remove { container, .. } => format!("remove {}", short(container)),
                Action::Canary { service, old, .. } => {
                    let old: Vec<String> = old[0].iter().map(|(r, _)| r.clone()).collect();
                    format!("canary {service} over {}", old.join(","))
                        .trim_end()
                        .to_string()
                }
                Action::Say { .. } => return None,
            })
        })
        .collect()
}

/// The actions that roll `spec()` out as `release` over `hosts`.
fn roll_out(options: &Options, release: u32, hosts: &[HostState]) -> Vec<Action> {
    let spec = spec();
    let d = Desired {
        profile: P,
        spec: &spec,
        release,
        options,
    };
    plan::roll_out(&d, hosts)
}

fn planned(strategy: Strategy, release: u32, host: HostState) -> Vec<String> {
    let options = Options {
        strategy,
        ..Options::default()
    };
    show(&roll_out(&options, release, &[host]))
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn first_deploy_builds_everything_and_replaces_nothing() {
    let infra_then = |rest: &str| lines(&format!("network\naccessory db\nproxy web\n{rest}"));
    assert_eq!(
        planned(Strategy::Rolling, 1, nothing()),
        infra_then(
            "start web r1.0
             ready web r1 [0]
             route web 1:1
             start web r1.1
             ready web r1 [1]
             route web 1:2
             start worker r1.0
             ready worker r1 [0]"
        )
    );
    assert_eq!(
        planned(Strategy::Recreate, 1, nothing()),
        infra_then(
            "hold web
             start web r1.0
             start web r1.1
             ready web r1 [0, 1]
             route web 1:100
             start worker r1.0
             ready worker r1 [0]"
        )
    );
    let whole_release = "start web r1.0
             start web r1.1
             ready web r1 [0, 1]";
    assert_eq!(
        planned(Strategy::BlueGreen, 1, nothing()),
        infra_then(&format!(
            "{whole_release}
             route web 1:100
             start worker r1.0
             ready worker r1 [0]"
        ))
    );
    // Nothing served before: the canary splits nothing but still walks
    // its steps; the internal worker rolls.
    assert_eq!(
        planned(Strategy::Canary, 1, nothing()),
        infra_then(&format!(
            "{whole_release}
             canary web over
             start worker r1.0
             ready worker r1 [0]"
        ))
    );
}

#[test]
fn from_a_live_release_each_strategy_keeps_serving_its_own_way() {
    assert_eq!(
        planned(Strategy::Rolling, 2, live_on_1()),
        lines(
            "start web r2.0
             ready web r2 [0]
             route web 1:1 2:1
             stop web-r1-0
             start web r2.1
             ready web r2 [1]
             route web 2:2
             stop web-r1-1
             start worker r2.0
             ready worker r2 [0]
             stop worker-r1-0"
        )
    );
    assert_eq!(
        planned(Strategy::Recreate, 2, live_on_1()),
        lines(
            "hold web
             stop web-r1-0 web-r1-1
             start web r2.0
             start web r2.1
             ready web r2 [0, 1]
             route web 2:100
             stop worker-r1-0
             start worker r2.0
             ready worker r2 [0]"
        )
    );
    // The old colour stays up, unrouted; an internal service has no
    // switch, so its old release stops.
    assert_eq!(
        planned(Strategy::BlueGreen, 2, live_on_1()),
        lines(
            "start web r2.0
             start web r2.1
             ready web r2 [0, 1]
             route web 2:100
             start worker r2.0
             ready worker r2 [0]
             stop worker-r1-0"
        )
    );
    assert_eq!(
        planned(Strategy::Canary, 2, live_on_1()),
        lines(
            "start web r2.0
             start web r2.1
             ready web r2 [0, 1]
             canary web over 1,1
             start worker r2.0
             ready worker r2 [0]
             stop worker-r1-0"
        )
    );
}

#[test]
fn an_unfinished_release_still_routed_is_retired_like_the_old_one() {
    assert_eq!(
        planned(Strategy::Rolling, 3, unfinished_2()),
        lines(
            "start web r3.0
             ready web r3 [0]
             route web 1:1 2:1 3:1
             stop web-r1-0
             start web r3.1
             ready web r3 [1]
             route web 2:1 3:2
             stop web-r1-1
             route web 3:2
             stop web-r2-0
             start worker r3.0
             ready worker r3 [0]
             stop worker-r1-0
             stop worker-r2-0"
        )
    );
    assert_eq!(
        planned(Strategy::Recreate, 3, unfinished_2()),
        lines(
            "hold web
             stop web-r1-0 web-r1-1 web-r2-0
             start web r3.0
             start web r3.1
             ready web r3 [0, 1]
             route web 3:100
             stop worker-r1-0 worker-r2-0
             start worker r3.0
             ready worker r3 [0]"
        )
    );
    assert_eq!(
        planned(Strategy::Canary, 3, unfinished_2())[3],
        "canary web over 1,1,2"
    );
    assert_eq!(
        planned(Strategy::BlueGreen, 3, unfinished_2())[3],
        "route web 3:100"
    );
}

#[test]
fn a_warm_colour_is_neither_routed_nor_replaced_and_cleanup_stops_it_later() {
    // Blue-green from 2 while 1 is warm: 1 is not routed, so the switch
    // and the canary only ever see release 2.
    assert_eq!(
        planned(Strategy::BlueGreen, 3, warm_1_live_2()),
        lines(
            "start web r3.0
             start web r3.1
             ready web r3 [0, 1]
             route web 3:100
             start worker r3.0
             ready worker r3 [0]
             stop worker-r2-0"
        )
    );
    assert_eq!(
        planned(Strategy::Canary, 3, warm_1_live_2())[3],
        "canary web over 2,2"
    );
    assert_eq!(
        planned(Strategy::Rolling, 3, warm_1_live_2())[2],
        "route web 2:1 3:1"
    );

    // After release 3 went live by blue-green: 2 is the new warm colour,
    // 1 is kept for rollback but stopped; with --keep 0 it is removed.
    let spec = spec();
    let options = Options {
        strategy: Strategy::BlueGreen,
        ..Options::default()
    };
    let d = Desired {
        profile: P,
        spec: &spec,
        release: 3,
        options: &options,
    };
    let history = [(2, true), (1, true)];
    let host = warm_1_live_2();
    let kept = plan::kept_releases(&history, 3, 5);
    assert_eq!(kept, vec![3, 2, 1]);
    assert_eq!(
        show(&plan::cleanup(
            &d,
            std::slice::from_ref(&host),
            &kept,
            Some(2)
        )),
        lines("stop web-r1-0\nstop web-r1-1")
    );
    let kept = plan::kept_releases(&history, 3, 1);
    assert_eq!(kept, vec![3, 2]);
    assert_eq!(
        show(&plan::cleanup(&d, &[host], &kept, Some(2))),
        lines("remove web-r1-0\nremove web-r1-1")
    );
}

#[test]
fn a_failed_release_is_never_kept_and_a_service_gone_from_the_app_is_removed() {
    // Release 2 failed: only 1 went live.
    assert_eq!(
        plan::kept_releases(&[(2, false), (1, true)], 3, 5),
        vec![3, 1]
    );
    let mut spec = spec();
    spec.services.retain(|s| s.name == "web");
    let options = Options::default();
    let d = Desired {
        profile: P,
        spec: &spec,
        release: 2,
        options: &options,
    };
    let actions = plan::cleanup(&d, &[live_on_1()], &[2, 1], None);
    assert_eq!(
        show(&actions),
        lines("stop web-r1-0\nstop web-r1-1\nremove worker-r1-0")
    );
    let Action::Remove { why, .. } = &actions[2] else {
        panic!("{actions:?}")
    };
    assert_eq!(why, "service worker is no longer in the app");
}

#[test]
fn every_host_gets_the_same_steps_and_one_canary_spans_them_all() {
    let mut h2 = live_on_1();
    h2.host = "h2".into();
    let options = Options {
        strategy: Strategy::Canary,
        ..Options::default()
    };
    let actions = roll_out(&options, 2, &[live_on_1(), h2]);
    let hosts_started: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::StartReplica { host, service, .. } if service == "web" => Some(host.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(hosts_started, ["h1", "h1", "h2", "h2"]);
    let canaries: Vec<&Action> = actions
        .iter()
        .filter(|a| matches!(a, Action::Canary { .. }))
        .collect();
    assert_eq!(canaries.len(), 1);
    let Action::Canary { old, .. } = canaries[0] else {
        unreachable!()
    };
    assert_eq!(old.len(), 2, "what each host routed before");
    // The dry run prints the same list.
    let hosts = ["h1".to_string(), "h2".to_string()];
    let described: Vec<_> = actions
        .iter()
        .flat_map(|a| plan::describe(a, P, &hosts))
        .collect();
    assert_eq!(described[0].action, "create");
    assert!(
        described
            .iter()
            .any(|l| l.action == "canary" && l.name == "dm-shop-web-proxy")
    );
    // What serves now on each host is named as replaced by the canary.
    let replaced: Vec<(&str, &str)> = described
        .iter()
        .filter(|l| l.action == "replace")
        .map(|l| (l.host.as_str(), l.name.as_str()))
        .collect();
    assert_eq!(
        replaced,
        [
            ("h1", "dm-shop-web-r1-0"),
            ("h1", "dm-shop-web-r1-1"),
            ("h2", "dm-shop-web-r1-0"),
            ("h2", "dm-shop-web-r1-1")
        ]
    );
}

#[test]
fn rolling_goes_host_by_host_or_replica_by_replica_on_all_hosts_at_once() {
    let two_hosts = || {
        let mut h2 = live_on_1();
        h2.host = "h2".into();
        vec![live_on_1(), h2]
    };
    let steps = |all_hosts_at_once: bool| -> Vec<String> {
        let options = Options {
            strategy: Strategy::Rolling,
            all_hosts_at_once,
            ..Options::default()
        };
        roll_out(&options, 2, &two_hosts())
            .iter()
            .filter_map(|a| match a {
                Action::StartReplica {
                    host,
                    service,
                    replica,
                    ..
                } if service == "web" => Some(format!("start {host}.{replica}")),
                Action::AwaitReady {
                    host,
                    service,
                    replicas,
                    ..
                } if service == "web" => Some(format!("ready {host}.{}", replicas[0])),
                Action::Route { host, service, .. } if service == "web" => {
                    Some(format!("route {host}"))
                }
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        steps(false),
        [
            "start h1.0",
            "ready h1.0",
            "route h1",
            "start h1.1",
            "ready h1.1",
            "route h1",
            "start h2.0",
            "ready h2.0",
            "route h2",
            "start h2.1",
            "ready h2.1",
            "route h2",
        ]
    );
    // Together: both hosts' replica starts before either is awaited, and
    // no host moves to its next replica before every host has routed this one.
    assert_eq!(
        steps(true),
        [
            "start h1.0",
            "start h2.0",
            "ready h1.0",
            "route h1",
            "ready h2.0",
            "route h2",
            "start h1.1",
            "start h2.1",
            "ready h1.1",
            "route h1",
            "ready h2.1",
            "route h2",
        ]
    );
}
