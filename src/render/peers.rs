//! Peer addresses on platforms that do not resolve a service by its bare
//! name. An env value that names a peer of the service graph
//! (`CART_SERVICE_ADDR: cart:7070`, `postgres://…@db/app`) gets the
//! platform's private address for it instead (Fly.io's `<app>.internal`, a
//! container group's `localhost`), so the call still connects there.

use crate::analyse::graph::Graph;
use crate::describe::app::App;

/// `value` with every mention of host `peer` replaced by `address`. A
/// mention is a whole host: after the start, `//`, `@`, `,`, `=`, `(`,
/// whitespace or a quote, and before the end, `:`, `/`, `,`, `)`, `?`, `;`,
/// whitespace or a quote. A path segment (`/cart`) is no host.
pub fn replace_host(value: &str, peer: &str, address: &str) -> String {
    let opens = |head: &str| {
        head.is_empty()
            || head.ends_with("//")
            || head.ends_with(|c: char| "@,=(\"' \t".contains(c))
    };
    let closes =
        |tail: &str| tail.is_empty() || tail.starts_with(|c: char| ":/,)?;\"' \t".contains(c));
    let mut out = String::with_capacity(value.len());
    let mut from = 0;
    for (i, _) in value.match_indices(peer) {
        if i < from {
            continue;
        }
        if opens(&value[..i]) && closes(&value[i + peer.len()..]) {
            out.push_str(&value[from..i]);
            out.push_str(address);
            from = i + peer.len();
        }
    }
    out.push_str(&value[from..]);
    out
}

/// The env of service `name` with its callees' hosts given by `address`
/// (`None` keeps a peer's name).
pub fn env_with_addresses(
    app: &App,
    graph: &Graph,
    name: &str,
    address: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let callees: Vec<(String, String)> = graph
        .callees_of(name)
        .filter_map(|e| Some((e.to.clone(), address(&e.to)?)))
        .collect();
    app.services[name]
        .env
        .iter()
        .map(|(k, v)| {
            let v = callees
                .iter()
                .fold(v.clone(), |v, (peer, addr)| replace_host(&v, peer, addr));
            (k.clone(), v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_hosts_only() {
        assert_eq!(
            replace_host("cart:7070", "cart", "x.internal"),
            "x.internal:7070"
        );
        assert_eq!(
            replace_host("postgres://u:p@db/app", "db", "localhost"),
            "postgres://u:p@localhost/app"
        );
        assert_eq!(replace_host("db", "db", "localhost"), "localhost");
        assert_eq!(replace_host("cartservice:1", "cart", "x"), "cartservice:1");
        assert_eq!(replace_host("mydb", "db", "x"), "mydb");
        assert_eq!(replace_host("a:1,cart:2", "cart", "x"), "a:1,x:2");
        assert_eq!(
            replace_host("http://cart:80/cart", "cart", "x"),
            "http://x:80/cart",
            "a path that repeats the name is not a host"
        );
    }
}
