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

/// A Compose substitution as a tree, to compare the one-pass interpolator
/// against a plain recursive reading of the same text.
#[derive(Clone, Debug)]
enum Subst {
    Lit(String),
    Var(String),
    Braced(String),
    /// `${NAME<op>WORD}` with op one of `:-`, `-`, `:+`, `+`.
    Op(String, &'static str, Vec<Subst>),
}

fn subst_tree() -> impl Strategy<Value = Vec<Subst>> {
    let var = prop::sample::select(vec!["SET", "EMPTY", "UNSET"]).prop_map(str::to_string);
    let leaf = prop_oneof![
        "[a-z .:/@{]{0,6}".prop_map(Subst::Lit),
        var.clone().prop_map(Subst::Braced),
        var.clone().prop_map(Subst::Var),
    ];
    let node = leaf.prop_recursive(6, 48, 4, move |inner| {
        (
            var.clone(),
            prop::sample::select(vec![":-", "-", ":+", "+"]),
            prop::collection::vec(inner, 0..4),
        )
            .prop_map(|(v, op, word)| Subst::Op(v, op, word))
    });
    prop::collection::vec(node, 0..5)
}

fn render_subst(nodes: &[Subst]) -> String {
    nodes
        .iter()
        .map(|n| match n {
            // A `$NAME` followed by letters would read as a longer name.
            Subst::Var(v) => format!("${v} "),
            Subst::Lit(l) => l.clone(),
            Subst::Braced(v) => format!("${{{v}}}"),
            Subst::Op(v, op, w) => format!("${{{v}{op}{}}}", render_subst(w)),
        })
        .collect()
}

fn eval_subst(nodes: &[Subst], env: &std::collections::HashMap<String, String>) -> String {
    nodes
        .iter()
        .map(|n| match n {
            Subst::Lit(l) => l.clone(),
            Subst::Var(v) => format!("{} ", env.get(v).cloned().unwrap_or_default()),
            Subst::Braced(v) => env.get(v).cloned().unwrap_or_default(),
            Subst::Op(v, op, w) => {
                let val = env.get(v);
                let present = if op.starts_with(':') {
                    val.is_some_and(|x| !x.is_empty())
                } else {
                    val.is_some()
                };
                match (op.trim_start_matches(':'), present) {
                    ("-", true) => val.cloned().unwrap_or_default(),
                    ("-", false) => eval_subst(w, env),
                    (_, true) => eval_subst(w, env),
                    (_, false) => String::new(),
                }
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn interpolation_matches_a_recursive_reading(tree in subst_tree()) {
        use deployment_manager::describe::interpolate::interpolate_str;
        let env: std::collections::HashMap<String, String> =
            [("SET", "v"), ("EMPTY", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let text = render_subst(&tree);
        let got = interpolate_str(&text, &env, &mut |_| {});
        prop_assert_eq!(got, Ok(eval_subst(&tree, &env)), "{}", text);
    }

    #[test]
    fn nesting_of_any_depth_ends_with_a_value_or_a_clear_error(depth in 0usize..5000, word in "[a-z]{0,4}") {
        use deployment_manager::describe::interpolate::{MAX_DEPTH, interpolate_str};
        let text = "${X:-".repeat(depth) + &word + &"}".repeat(depth);
        match interpolate_str(&text, &Default::default(), &mut |_| {}) {
            Ok(v) => { prop_assert!(depth <= MAX_DEPTH); prop_assert_eq!(v, word); }
            Err(e) => { prop_assert!(depth > MAX_DEPTH); prop_assert!(e.contains("nested deeper"), "{}", e); }
        }
    }
}

/// Placement constraints: any text parses or is refused with a reason,
/// never a panic; a well-formed one keeps its key, operator and value, and
/// holds on exactly the nodes whose attribute matches.
mod constraints {
    use deployment_manager::describe::node_placement::{Constraint, NodeFacts, NodeKey};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_text_parses_or_is_refused_with_a_reason(text in "\\PC{0,40}") {
            if let Err(e) = Constraint::parse(&text) {
                prop_assert!(e.contains("constraint"), "{}", e);
            }
        }

        #[test]
        fn a_label_constraint_reads_back_and_holds_where_the_label_matches(
            label in "[a-z][a-z0-9_.-]{0,12}",
            value in "[A-Za-z0-9_-]{1,12}",
            other in "[A-Za-z0-9_-]{1,12}",
            equal in any::<bool>(),
            spaces in any::<bool>(),
        ) {
            let op = if equal { "==" } else { "!=" };
            let pad = if spaces { " " } else { "" };
            let c = Constraint::parse(&format!("node.labels.{label}{pad}{op}{pad}{value}")).unwrap();
            prop_assert_eq!(&c.key, &NodeKey::Label(label.clone()));
            prop_assert_eq!(c.equal, equal);
            prop_assert_eq!(&c.value, &value);
            let node = |v: &str| NodeFacts {
                labels: [(label.clone(), v.to_string())].into(),
                ..Default::default()
            };
            prop_assert_eq!(c.holds_on(&node(&value)), equal);
            prop_assert_eq!(c.holds_on(&node(&other)), other.eq_ignore_ascii_case(&value) == equal);
            prop_assert_eq!(c.holds_on(&NodeFacts::default()), !equal);
        }
    }
}

/// Every priced line of every estimate is its billable quantity times its
/// unit price, in the price's own unit, less the price's free quantity and
/// credit: the estimator never prices a line some other way.
mod cost_lines {
    use deployment_manager::analyse::cost::{self, Strategy as Deploy};
    use deployment_manager::catalog::Catalog;
    use deployment_manager::describe::load::parse_app;
    use proptest::prelude::*;

    const EXAMPLES: [&str; 5] = [
        "picker-wheel",
        "will-it-compile",
        "coding-platform",
        "automation-agents",
        "minsky-sessions",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn monthly_is_quantity_times_unit_price_in_the_prices_unit(
            ex in 0usize..EXAMPLES.len(),
            target in 0usize..64,
            users in 2u32..=10_000,
        ) {
            let cat = Catalog::embedded();
            let path = format!("examples/{}/app.yaml", EXAMPLES[ex]);
            let app = parse_app(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
            let t = &cat.targets[target % cat.targets.len()];
            let e = cost::estimate(&cat, &app, t, users, Deploy::Rolling);
            for l in &e.lines {
                let Some(unit_price) = l.unit_price else {
                    prop_assert!(l.price_not_found && l.monthly == 0.0, "{l:?}");
                    continue;
                };
                let price = l.price_id.as_deref().and_then(|id| cat.price(id));
                if let Some(p) = price.filter(|p| p.usd == Some(unit_price)) {
                    prop_assert_eq!(l.unit, p.unit, "{}", l.name);
                    let billable = (l.quantity - p.free_quantity.unwrap_or(0.0)).max(0.0);
                    let want = (billable * unit_price - p.free_usd.unwrap_or(0.0)).max(0.0);
                    prop_assert!(
                        (l.monthly - want).abs() < 0.011,
                        "{} on {} at {users}: `{}` {} {} × ${unit_price} = ${want:.2}, estimated ${}",
                        EXAMPLES[ex], t.id, l.name, l.quantity, l.unit, l.monthly
                    );
                } else {
                    // Lines the estimator prices itself (free, credits).
                    prop_assert!(
                        (l.monthly - l.quantity * unit_price).abs() < 0.011,
                        "{} on {}: `{}`", EXAMPLES[ex], t.id, l.name
                    );
                }
            }
            let sum: f64 = e.lines.iter().map(|l| l.monthly).sum();
            prop_assert!((sum - e.total).abs() < 0.05, "lines sum to {sum}, total {}", e.total);
        }
    }
}
