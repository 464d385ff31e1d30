//! Who a service calls, read from its configuration the way real apps name
//! their peers: a host (`WORDPRESS_DB_HOST: db`), `host:port`
//! (`CART_SERVICE_ADDR: cartservice:7070`), URLs and DSNs
//! (`postgres://u:p@db/app`, `user:pw@tcp(db:3306)/app`), comma-separated
//! lists and libpq `host=db port=5432`. Imports turn what this finds into
//! `connects_to`, each edge with its evidence, so that generated network
//! isolation never cuts a call the app makes.

use super::app::Connection;
use super::findings::{Findings, Severity};
use indexmap::IndexMap;
use std::collections::{BTreeMap, BTreeSet};

/// A host (and port) named in a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mention {
    pub host: String,
    pub port: Option<u16>,
}

/// Every host a value names. `bare_words` also takes a lone word as a host
/// (right for an environment value, too loose for a command line or a file,
/// where only `host:port` and URLs count).
pub fn mentions(text: &str, bare_words: bool) -> Vec<Mention> {
    let mut out = Vec::new();
    // libpq style: `host=db port=5432` in one value.
    let mut kv_host = None;
    let mut kv_port = None;
    for token in text.split(|c: char| c.is_whitespace() || ";\"'`()<>{}[]|".contains(c)) {
        if token.is_empty() {
            continue;
        }
        if let Some((k, v)) = token.split_once('=')
            && !k.contains(['/', ':'])
        {
            let hostish = match k.to_ascii_lowercase().as_str() {
                "host" | "hostname" | "server" | "addr" => {
                    kv_host = Some(v.to_ascii_lowercase());
                    true
                }
                "port" => {
                    kv_port = v.parse::<u16>().ok();
                    false
                }
                _ => false,
            };
            // `dbname=app` names no host; `--api=http://api:80` does.
            scan_token(v, bare_words && hostish, &mut out);
            continue;
        }
        scan_token(token, bare_words, &mut out);
    }
    if let Some(host) = kv_host
        && let Some(port) = kv_port
    {
        if let Some(m) = out.iter_mut().find(|m| m.host == host && m.port.is_none()) {
            m.port = Some(port);
        } else if is_host(&host) {
            out.push(Mention {
                host,
                port: Some(port),
            });
        }
    }
    out
}

fn scan_token(token: &str, bare_words: bool, out: &mut Vec<Mention>) {
    let token = token.trim_matches(|c: char| c == ',' || c == '.' || c == '/');
    let (authority, from_url) = match token.split_once("://") {
        // A URL: its authority, which may list several hosts (MongoDB).
        Some((_, rest)) => (rest.split(['/', '?', '#']).next().unwrap_or(""), true),
        None => (token, false),
    };
    for item in authority.split(',') {
        // Drop user info, then any path after host:port.
        let item = item.rsplit_once('@').map_or(item, |(_, h)| h);
        let item = item.split('/').next().unwrap_or("");
        let (host, port) = match item.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) if p > 0 => (h, Some(p)),
                _ => continue, // `image:tag`, `scheme:opaque`
            },
            None => (item, None),
        };
        if !is_host(host) || (port.is_none() && !from_url && !bare_words) {
            continue;
        }
        out.push(Mention {
            host: host.to_ascii_lowercase(),
            port,
        });
    }
}

fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

/// Does a variable of this name hold a host? Only then is a lone word in
/// its value read as one (`WORDPRESS_DB_HOST: db`), so that
/// `PGDATABASE: ledger` does not make a call to a service named `ledger`.
/// Values with a port or a scheme count whatever the name.
pub fn key_names_host(key: &str) -> bool {
    const HOSTISH: [&str; 14] = [
        "HOST", "ADDR", "SERVER", "URL", "URI", "ENDPOINT", "DSN", "BROKER", "PEER", "UPSTREAM",
        "BACKEND", "NODES", "REMOTE", "CONNECT",
    ];
    let key = key.to_ascii_uppercase();
    HOSTISH.iter().any(|h| key.contains(h))
}

/// Names a component answers to in its source (service name, hostname,
/// aliases, Kubernetes Service names), lowercase, mapped to the component.
#[derive(Default)]
pub struct PeerNames(BTreeMap<String, String>);

impl PeerNames {
    pub fn add(&mut self, alias: &str, component: &str) {
        self.0
            .entry(alias.to_ascii_lowercase())
            .or_insert_with(|| component.to_string());
    }

    /// The component a host means: the name itself, or the Service of a
    /// cluster DNS name: `cart.shop.svc.cluster.local`, or a StatefulSet
    /// pod's `kafka-0.kafka-headless.shop.svc.cluster.local`.
    fn resolve(&self, host: &str) -> Option<&str> {
        if let Some(c) = self.0.get(host) {
            return Some(c);
        }
        let labels: Vec<&str> = host.split('.').collect();
        let svc = labels.iter().position(|l| *l == "svc")?;
        let service = match svc {
            2 => labels[0],
            3 => labels[1],
            _ => return None,
        };
        self.0.get(service).map(String::as_str)
    }
}

/// The calls found for one service, with the evidence for each.
#[derive(Default)]
pub struct Calls {
    found: IndexMap<(String, Option<u16>), BTreeSet<String>>,
}

impl Calls {
    /// Records the peers an environment variable names.
    pub fn scan_env(&mut self, names: &PeerNames, me: &str, key: &str, value: &str) {
        let bare = key_names_host(key);
        self.scan(names, me, &format!("env {key}"), value, bare);
    }

    /// Records every peer `text` names; `evidence` says where it was read
    /// (`env CART_SERVICE_ADDR`).
    pub fn scan(&mut self, names: &PeerNames, me: &str, evidence: &str, text: &str, bare: bool) {
        for m in mentions(text, bare) {
            let Some(to) = names.resolve(&m.host) else {
                continue;
            };
            if to != me {
                self.found
                    .entry((to.to_string(), m.port))
                    .or_default()
                    .insert(evidence.to_string());
            }
        }
    }

    /// Writes the calls of `me` into its `connects_to` (calls that
    /// `depends_on` already covers on every port are not repeated) and
    /// names each edge's evidence in a finding at `at`.
    pub fn apply(
        self,
        me: &str,
        depends_on: &[String],
        connects_to: &mut Vec<Connection>,
        at: &str,
        findings: &mut Findings,
    ) {
        let mut said: IndexMap<String, (BTreeSet<String>, BTreeSet<u16>)> = IndexMap::new();
        for ((to, port), evidence) in self.found {
            let covered = port.is_none() && depends_on.contains(&to);
            let call = Connection {
                to: to.clone(),
                port,
            };
            if !covered && !connects_to.contains(&call) {
                connects_to.push(call);
            }
            let entry = said.entry(to).or_default();
            entry.0.extend(evidence);
            entry.1.extend(port);
        }
        for (to, (evidence, ports)) in said {
            let on = match ports.len() {
                0 => String::new(),
                _ => format!(
                    " on port {}",
                    ports
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let evidence: Vec<String> = evidence.into_iter().collect();
            findings.add(
                at,
                Severity::Info,
                format!(
                    "`{me}` calls `{to}`{on} ({}): kept as a connection",
                    evidence.join(", ")
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str, bare: bool) -> Vec<(String, Option<u16>)> {
        mentions(text, bare)
            .into_iter()
            .map(|m| (m.host, m.port))
            .collect()
    }

    fn h(host: &str, port: Option<u16>) -> (String, Option<u16>) {
        (host.to_string(), port)
    }

    #[test]
    fn reads_the_ways_apps_name_peers() {
        assert_eq!(
            hosts("cartservice:7070", false),
            [h("cartservice", Some(7070))]
        );
        assert_eq!(hosts("db", true), [h("db", None)]);
        assert!(
            hosts("db", false).is_empty(),
            "a bare word needs bare_words"
        );
        assert_eq!(
            hosts("postgres://app:s3cret@db/app?sslmode=disable", false),
            [h("db", None)]
        );
        assert_eq!(
            hosts("user:pw@tcp(mysql:3306)/shop?parseTime=true", false),
            [h("mysql", Some(3306))]
        );
        assert_eq!(
            hosts("mongodb://a:27017,b:27018/db", false),
            [h("a", Some(27017)), h("b", Some(27018))]
        );
        assert_eq!(
            hosts("kafka-1:9092,kafka-2:9092", false),
            [h("kafka-1", Some(9092)), h("kafka-2", Some(9092))]
        );
        assert_eq!(
            hosts("host=pg port=5432 dbname=app", true),
            [h("pg", Some(5432))]
        );
        assert_eq!(
            hosts("--upstream=http://api:8000/v1", false),
            [h("api", Some(8000))]
        );
        assert_eq!(
            hosts("jdbc:postgresql://db:5432/app", false),
            [h("db", Some(5432))]
        );
        assert_eq!(
            hosts("proxy_pass http://backend:8080;", false),
            [h("backend", Some(8080))]
        );
        assert!(
            hosts("redis:latest", true).is_empty(),
            "an image tag is no port"
        );
    }

    #[test]
    fn a_lone_word_is_a_host_only_in_a_variable_that_holds_one() {
        assert!(key_names_host("WORDPRESS_DB_HOST"));
        assert!(key_names_host("redis_addr"));
        assert!(key_names_host("KAFKA_BROKERS"));
        assert!(!key_names_host("PGDATABASE"));
        assert!(!key_names_host("MARIADB_DATABASE"));
        assert!(!key_names_host("TOPIC"));
    }

    #[test]
    fn resolves_cluster_dns_names_and_aliases_only() {
        let mut names = PeerNames::default();
        names.add("Cart", "cart");
        names.add("database", "db");
        assert_eq!(names.resolve("cart"), Some("cart"));
        assert_eq!(names.resolve("database"), Some("db"));
        assert_eq!(names.resolve("cart.shop.svc.cluster.local"), Some("cart"));
        assert_eq!(names.resolve("cart.shop.svc"), Some("cart"));
        names.add("kafka-headless", "kafka");
        assert_eq!(
            names.resolve("kafka-0.kafka-headless.shop.svc.cluster.local"),
            Some("kafka")
        );
        assert_eq!(names.resolve("cart.example.com"), None);
    }
}
