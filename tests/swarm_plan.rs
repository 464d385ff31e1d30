//! The Swarm planner without a swarm: every strategy from four starting
//! points (nothing deployed, live on release 1, an unfinished canary of
//! release 2 still taking traffic, a warm blue-green colour). The
//! end-to-end swarm tests prove the executor carries the lists out.

use deployment_manager::analyse::cost::Strategy;
use deployment_manager::deploy::spec::{AccessorySpec, HealthSpec, ReleaseSpec, ServiceSpec};
use deployment_manager::deploy::strategy::Options;
use deployment_manager::deploy::swarm::plan::{self, Action, Desired, OrderName, SwarmState};
use std::collections::BTreeMap;

const P: &str = "shop";

fn spec() -> ReleaseSpec {
    let health = HealthSpec {
        command: vec!["/probe".into()],
        ..HealthSpec::default()
    };
    ReleaseSpec {
        services: vec![
            ServiceSpec {
                name: "web".into(),
                image: "web:2".into(),
                replicas: 2,
                port: Some(8080),
                public_port: Some(80),
                secrets: vec!["SESSION_KEY".into()],
                health: health.clone(),
                ..ServiceSpec::default()
            },
            ServiceSpec {
                name: "worker".into(),
                image: "worker:2".into(),
                replicas: 1,
                health,
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

fn svc(name: &str) -> String {
    format!("dm-{P}-{name}")
}

fn nothing() -> SwarmState {
    SwarmState {
        manager: "local".into(),
        ..SwarmState::default()
    }
}

fn live_on_1() -> SwarmState {
    SwarmState {
        manager: "local".into(),
        network: true,
        services: vec![svc("db"), svc("web"), svc("worker")],
        stopped: vec![],
        routed: BTreeMap::from([("web".into(), vec![(1, svc("web"), 100)])]),
        proxies: vec!["web".into()],
    }
}

/// A canary of release 2 died at 30 %.
fn unfinished_2() -> SwarmState {
    let mut s = live_on_1();
    s.services.push(svc("web-r2"));
    s.routed = BTreeMap::from([(
        "web".into(),
        vec![(1, svc("web"), 70), (2, svc("web-r2"), 30)],
    )]);
    s
}

/// Blue-green went from 1 to 2; the stable service of 1 stays warm.
fn warm_1_live_2() -> SwarmState {
    let mut s = live_on_1();
    s.services.push(svc("web-r2"));
    s.routed = BTreeMap::from([("web".into(), vec![(2, svc("web-r2"), 100)])]);
    s
}

fn show(actions: &[Action]) -> Vec<String> {
    let short = |n: &str| n.trim_start_matches(&format!("dm-{P}-")).to_string();
    actions
        .iter()
        .filter_map(|a| {
            Some(match a {
                Action::CreateNetwork => "network".into(),
                Action::CreateAccessory { accessory } => format!("accessory {accessory}"),
                Action::StartAccessory { accessory } => format!("start {accessory}"),
                Action::EnsureProxy { service } => format!("proxy {service}"),
                Action::UpdateInPlace {
                    swarm_service,
                    release,
                    order,
                    exists,
                    ..
                } => format!(
                    "{} {} r{release} {}",
                    if *exists { "update" } else { "create" },
                    short(swarm_service),
                    match order {
                        OrderName::StartFirst => "start-first",
                        OrderName::StopFirst => "stop-first",
                    }
                ),
                Action::StartOwn { swarm_service, .. } => format!("start {}", short(swarm_service)),
                Action::Route { swarm_service, .. } => format!("route {}", short(swarm_service)),
                Action::ScaleToZero { swarm_service } => format!("zero {}", short(swarm_service)),
                Action::Canary { canary, before, .. } => {
                    let b: Vec<String> = before
                        .iter()
                        .map(|(r, n, w)| format!("{}@{r}:{w}", short(n)))
                        .collect();
                    format!("canary {} over {}", short(canary), b.join(","))
                        .trim_end()
                        .to_string()
                }
                Action::Say { phase, message } if phase == "warm" => {
                    format!("warm {}", short(message.split(' ').next().unwrap_or("")))
                }
                Action::Say { .. } => return None,
            })
        })
        .collect()
}

fn planned_with(strategy: Strategy, cleanup: bool, release: u32, now: SwarmState) -> Vec<String> {
    let spec = spec();
    let options = Options {
        strategy,
        cleanup,
        ..Options::default()
    };
    let d = Desired {
        profile: P,
        spec: &spec,
        release,
        options: &options,
    };
    show(&plan::roll_out(&d, &now))
}

fn planned(strategy: Strategy, release: u32, now: SwarmState) -> Vec<String> {
    planned_with(strategy, false, release, now)
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn first_deploy_creates_network_dependency_proxy_and_services() {
    let first = "network\naccessory db\nproxy web";
    assert_eq!(
        planned(Strategy::Rolling, 1, nothing()),
        lines(&format!(
            "{first}\ncreate web r1 start-first\nroute web\ncreate worker r1 start-first"
        ))
    );
    assert_eq!(
        planned(Strategy::Recreate, 1, nothing()),
        lines(&format!(
            "{first}\ncreate web r1 stop-first\nroute web\ncreate worker r1 stop-first"
        ))
    );
    assert_eq!(
        planned(Strategy::BlueGreen, 1, nothing()),
        lines(&format!(
            "{first}\nstart web-r1\nroute web-r1\ncreate worker r1 start-first"
        ))
    );
    assert_eq!(
        planned(Strategy::Canary, 1, nothing()),
        lines(&format!(
            "{first}\nstart web-r1\ncanary web-r1 over\ncreate worker r1 start-first"
        ))
    );
}

/// Stopped (`stop`, or behind its proxies after a move to other
/// machines): the next deploy brings the dependency's task back before
/// anything else, the service as it is (created once, never replaced).
#[test]
fn a_dependency_scaled_to_zero_is_started_again_first() {
    let mut stopped = live_on_1();
    stopped.stopped = vec![svc("db"), svc("web"), svc("worker")];
    assert_eq!(
        planned(Strategy::Rolling, 2, stopped)[0],
        "start db".to_string()
    );
    assert!(!planned(Strategy::Rolling, 2, live_on_1()).contains(&"start db".to_string()));
}

#[test]
fn from_a_live_release_each_strategy_replaces_it_its_own_way() {
    assert_eq!(
        planned(Strategy::Rolling, 2, live_on_1()),
        lines("update web r2 start-first\nroute web\nupdate worker r2 start-first")
    );
    assert_eq!(
        planned(Strategy::Recreate, 2, live_on_1()),
        lines("update web r2 stop-first\nroute web\nupdate worker r2 stop-first")
    );
    // The old stable service stays warm; an internal service has nothing
    // to switch, so it is updated in place.
    assert_eq!(
        planned(Strategy::BlueGreen, 2, live_on_1()),
        lines("start web-r2\nroute web-r2\nwarm web\nupdate worker r2 start-first")
    );
    assert_eq!(
        planned_with(Strategy::BlueGreen, true, 2, live_on_1()),
        lines("start web-r2\nroute web-r2\nzero web\nupdate worker r2 start-first")
    );
    assert_eq!(
        planned(Strategy::Canary, 2, live_on_1()),
        lines("start web-r2\ncanary web-r2 over web@1:100\nupdate worker r2 start-first")
    );
}

#[test]
fn an_unfinished_canary_still_routed_is_replaced_with_the_old_release() {
    // Rolling moves all traffic to the stable service and empties the
    // canary's own service.
    assert_eq!(
        planned(Strategy::Rolling, 3, unfinished_2()),
        lines("update web r3 start-first\nroute web\nzero web-r2\nupdate worker r3 start-first")
    );
    assert_eq!(
        planned(Strategy::BlueGreen, 3, unfinished_2()),
        lines("start web-r3\nroute web-r3\nwarm web\nwarm web-r2\nupdate worker r3 start-first")
    );
    assert_eq!(
        planned(Strategy::Canary, 3, unfinished_2())[1],
        "canary web-r3 over web@1:70,web-r2@2:30"
    );
}

#[test]
fn a_warm_colour_is_not_routed_so_only_the_live_one_is_replaced() {
    assert_eq!(
        planned(Strategy::BlueGreen, 3, warm_1_live_2()),
        lines("start web-r3\nroute web-r3\nwarm web-r2\nupdate worker r3 start-first")
    );
    assert_eq!(
        planned(Strategy::Canary, 3, warm_1_live_2())[1],
        "canary web-r3 over web-r2@2:100"
    );
    // Rolling returns to the stable (warm) service, updated to release 3,
    // and the blue-green colour that served has nothing left.
    assert_eq!(
        planned(Strategy::Rolling, 3, warm_1_live_2()),
        lines("update web r3 start-first\nroute web\nzero web-r2\nupdate worker r3 start-first")
    );
}

#[test]
fn the_dry_run_names_secrets_services_and_what_the_canary_replaces() {
    let spec = spec();
    let options = Options {
        strategy: Strategy::Canary,
        ..Options::default()
    };
    let d = Desired {
        profile: P,
        spec: &spec,
        release: 2,
        options: &options,
    };
    let now = live_on_1();
    // The proxy runs on each node the profile names; services are the manager's.
    let nodes = [now.manager.clone(), "ssh://root@node2".to_string()];
    let described: Vec<(String, String, String, String)> = plan::roll_out(&d, &now)
        .iter()
        .flat_map(|a| plan::describe(a, &d, &now.manager, &nodes))
        .map(|l| (l.host, l.action, l.kind, l.name))
        .collect();
    let m = now.manager.as_str();
    let want = [
        (m, "create", "secret", "dm-shop-session-key-r2"),
        (m, "create", "service", "dm-shop-web-r2"),
        (m, "canary", "proxy", "dm-shop-web-proxy"),
        ("ssh://root@node2", "canary", "proxy", "dm-shop-web-proxy"),
        (m, "replace", "service", "dm-shop-web"),
        (m, "update", "service", "dm-shop-worker"),
    ];
    let got: Vec<(&str, &str, &str, &str)> = described
        .iter()
        .map(|(h, a, k, n)| (h.as_str(), a.as_str(), k.as_str(), n.as_str()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_service_without_a_health_command_is_warned_about() {
    let mut spec = spec();
    spec.services[1].health.command.clear();
    let options = Options::default();
    let d = Desired {
        profile: P,
        spec: &spec,
        release: 2,
        options: &options,
    };
    let warnings: Vec<String> = plan::roll_out(&d, &live_on_1())
        .into_iter()
        .filter_map(|a| match a {
            Action::Say { phase, message } if phase == "warning" => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].starts_with("worker: no health command"));
}
