//! What a dependency's data looks like from inside, to check a move by
//! meaning as well as by bytes: the volume copy compares every file
//! (`volume_copy.rs`), this compares what the database server itself
//! reports on both sides — per table row counts and a checksum of the
//! rows for PostgreSQL, MySQL and MariaDB, key counts for Redis and
//! Valkey — read with the
//! dependency's own client inside its container. The command is decided
//! and its output judged without IO; only [`take`] runs it.

use super::docker_host::client::Host;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A dependency's data as its server reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum Census {
    /// Table → (rows, MD5 of the rows' text in order).
    Tables(BTreeMap<String, (u64, String)>),
    /// Keys over every Redis database.
    Keys(u64),
}

impl std::fmt::Display for Census {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Census::Tables(t) => {
                let rows: u64 = t.values().map(|(n, _)| n).sum();
                write!(f, "{} table(s), {rows} row(s)", t.len())
            }
            Census::Keys(n) => write!(f, "{n} key(s)"),
        }
    }
}

/// One statement giving, per user table of the database, its name, row
/// count and the MD5 of its rows' text in order (`query_to_xml` runs the
/// per-table query, so no second pass is needed). Also printed for moves
/// done by hand, to run on both sides.
pub const PG_CENSUS_SQL: &str = "select format('%s.%s', schemaname, tablename), x.c[1], x.c[2] from pg_tables, lateral (select xpath('/row/*/text()', query_to_xml(format('select count(*) as n, md5(coalesce(string_agg(t::text, chr(10) order by t::text), %L)) as s from %I.%I t', '', schemaname, tablename), false, true, ''))::text[] as c) x where schemaname not in ('pg_catalog', 'information_schema') order by 1";

/// MySQL and MariaDB have no `query_to_xml`: this statement writes the
/// census query, one `SELECT` per user table giving `census`, its name,
/// row count and the sum of each row's CRC32 over its values in column
/// order (`ISNULL` flags tell a NULL from an empty string, as
/// pt-table-checksum does). A sum, not a XOR, so two equal rows do not
/// cancel out; values, not `CHECKSUM TABLE`, whose result changes with the
/// row format. NULL when there are no tables.
pub const MYSQL_CENSUS_GENERATOR_SQL: &str = "SET SESSION group_concat_max_len = 4294967295; SELECT GROUP_CONCAT(q ORDER BY t SEPARATOR ' UNION ALL ') FROM (SELECT CONCAT(c.table_schema, '.', c.table_name) AS t, CONCAT('SELECT ''census'', ', QUOTE(CONCAT(c.table_schema, '.', c.table_name)), ', COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS(''#'', ', GROUP_CONCAT(CONCAT('`', REPLACE(c.column_name, '`', '``'), '`') ORDER BY c.ordinal_position), ', CONCAT(', GROUP_CONCAT(CONCAT('ISNULL(`', REPLACE(c.column_name, '`', '``'), '`)') ORDER BY c.ordinal_position), ')))), 0) FROM `', REPLACE(c.table_schema, '`', '``'), '`.`', REPLACE(c.table_name, '`', '``'), '`') AS q FROM information_schema.columns c JOIN information_schema.tables b ON b.table_schema = c.table_schema AND b.table_name = c.table_name WHERE b.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') GROUP BY c.table_schema, c.table_name) x";

/// Who the MySQL census logs in as, with the official images' settings
/// (`MARIADB_*` or `MYSQL_*`, each also as a `_FILE`): root with its
/// password; else the app's user, who sees the app's database; else root
/// without a password. The password goes in `MYSQL_PWD`, never in the
/// arguments (which `ps` shows).
const MYSQL_CENSUS_SCRIPT: &str = r#"v() { eval "x=\${MARIADB_$1:-\${MYSQL_$1:-}}; f=\${MARIADB_$1_FILE:-\${MYSQL_$1_FILE:-}}"; if [ -z "$x" ] && [ -n "$f" ]; then read -r x < "$f" || true; fi; printf '%s' "$x"; }
U=root; P=$(v ROOT_PASSWORD)
if [ -z "$P" ] && [ -n "$(v USER)" ]; then U=$(v USER); P=$(v PASSWORD); fi
C=$(command -v mariadb || command -v mysql) || { echo "no mariadb or mysql client in the container"; exit 127; }
q() { MYSQL_PWD="$P" "$C" -u"$U" -N -B -r -e "$1"; }
G=$(q "$1") || exit
if [ -n "$G" ] && [ "$G" != NULL ]; then q "$G"; fi"#;

/// The command that reads the census of a dependency of `kind`, run in its
/// container; `None` for kinds it cannot read (their volume copy is still
/// checked file by file). PostgreSQL is read as `POSTGRES_USER` in
/// `POSTGRES_DB` (the official image's settings; `postgres` otherwise)
/// over the local socket; MySQL and MariaDB over theirs (see
/// [`MYSQL_CENSUS_SCRIPT`]).
pub fn command(kind: &str) -> Option<Vec<String>> {
    let (script, sql) = match kind {
        "postgres" => (
            r#"U="${POSTGRES_USER:-postgres}"; psql -XAtq -v ON_ERROR_STOP=1 -U "$U" -d "${POSTGRES_DB:-$U}" -c "$1""#,
            PG_CENSUS_SQL,
        ),
        "mysql" | "mariadb" => (MYSQL_CENSUS_SCRIPT, MYSQL_CENSUS_GENERATOR_SQL),
        "redis" | "valkey" => ("redis-cli INFO keyspace", ""),
        _ => return None,
    };
    Some(
        ["sh", "-c", script, "census", sql]
            .map(String::from)
            .to_vec(),
    )
}

/// Reads a census from the command's output.
pub fn parse(kind: &str, out: &str) -> Result<Census, String> {
    match kind {
        "postgres" => tables(
            out.lines().map(str::trim).filter(|l| !l.is_empty()),
            '|',
            "psql",
        ),
        // `census<TAB>schema.table<TAB>rows<TAB>sum` per table; other
        // lines are the client's warnings (stderr comes along).
        "mysql" | "mariadb" => tables(
            out.lines()
                .filter_map(|l| l.strip_prefix("census\t"))
                .map(str::trim_end),
            '\t',
            "the census",
        ),
        _ => {
            // `db0:keys=3,expires=0,avg_ttl=0` per database with keys.
            let mut keys = 0;
            for line in out.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let n = line
                    .split_once(":keys=")
                    .and_then(|(_, rest)| rest.split(',').next())
                    .and_then(|n| n.parse::<u64>().ok())
                    .ok_or_else(|| format!("unexpected line from redis-cli: {line}"))?;
                keys += n;
            }
            Ok(Census::Keys(keys))
        }
    }
}

/// Tables from lines of `name`, rows and checksum split by `sep`, taken
/// from the right so the separator may appear in a name.
fn tables<'a>(
    lines: impl Iterator<Item = &'a str>,
    sep: char,
    from: &str,
) -> Result<Census, String> {
    let mut tables = BTreeMap::new();
    for line in lines {
        let bad = || format!("unexpected line from {from}: {line}");
        let mut parts = line.rsplitn(3, sep);
        let (Some(sum), Some(rows), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let rows = rows.parse().map_err(|_| bad())?;
        tables.insert(name.to_string(), (rows, sum.to_string()));
    }
    Ok(Census::Tables(tables))
}

/// The differences between the census before and after, or none.
pub fn differences(before: &Census, after: &Census) -> Vec<String> {
    match (before, after) {
        (Census::Keys(a), Census::Keys(b)) if a != b => {
            vec![format!("{a} key(s) before, {b} after")]
        }
        (Census::Tables(a), Census::Tables(b)) => {
            let mut out = Vec::new();
            for (name, (rows, sum)) in a {
                match b.get(name) {
                    None => out.push(format!("table {name} is missing")),
                    Some((r, _)) if r != rows => {
                        out.push(format!("table {name}: {rows} row(s) before, {r} after"))
                    }
                    Some((_, s)) if s != sum => {
                        out.push(format!("table {name}: same row count, different content"))
                    }
                    Some(_) => {}
                }
            }
            for name in b.keys().filter(|n| !a.contains_key(*n)) {
                out.push(format!("table {name} was not there before"));
            }
            out
        }
        (Census::Keys(_), Census::Keys(_)) => Vec::new(),
        _ => vec!["the two sides are different kinds of store".into()],
    }
}

/// Reads the census of the dependency of `kind` in `container` on `host`,
/// retrying while its server starts (up to `wait`). `Ok(None)` when the
/// kind has no census.
pub async fn take(
    host: &Host,
    container: &str,
    kind: &str,
    wait: Duration,
) -> Result<Option<Census>, String> {
    let Some(cmd) = command(kind) else {
        return Ok(None);
    };
    let started = Instant::now();
    loop {
        let why = match host.exec(container, cmd.clone()).await {
            Ok((0, out)) => return parse(kind, &out).map(Some),
            Ok((code, out)) => format!("exit {code}: {}", out.trim()),
            Err(e) => e.to_string(),
        };
        if started.elapsed() >= wait {
            return Err(format!(
                "cannot read the data of {container} on {}: {why}",
                host.name
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_tables_are_read_with_counts_and_checksums() {
        let out = "public.orders|1204|9e107d9d372bb6826bd81d3542a419d6\npublic.odd|name|0|d41d8cd98f00b204e9800998ecf8427e\n";
        let Census::Tables(t) = parse("postgres", out).unwrap() else {
            panic!()
        };
        assert_eq!(t["public.orders"].0, 1204);
        // A `|` in a table's name stays in the name.
        assert_eq!(t["public.odd|name"].0, 0);
        assert!(parse("postgres", "garbage").is_err());
        assert_eq!(
            parse("postgres", "").unwrap().to_string(),
            "0 table(s), 0 row(s)"
        );
    }

    #[test]
    fn redis_keys_are_summed_over_databases() {
        let out =
            "# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=100\r\ndb2:keys=4,expires=0,avg_ttl=0\r\n";
        assert_eq!(parse("redis", out).unwrap(), Census::Keys(7));
        assert_eq!(parse("valkey", "# Keyspace\n").unwrap(), Census::Keys(0));
    }

    #[test]
    fn differences_name_each_table_and_count_that_changed() {
        let t = |rows: &[(&str, u64, &str)]| {
            Census::Tables(
                rows.iter()
                    .map(|(n, r, s)| (n.to_string(), (*r, s.to_string())))
                    .collect(),
            )
        };
        let before = t(&[("public.a", 3, "x"), ("public.b", 2, "y")]);
        assert!(differences(&before, &before).is_empty());
        let after = t(&[("public.a", 3, "z"), ("public.c", 1, "w")]);
        assert_eq!(
            differences(&before, &after),
            [
                "table public.a: same row count, different content",
                "table public.b is missing",
                "table public.c was not there before"
            ]
        );
        assert_eq!(
            differences(&Census::Keys(5), &Census::Keys(4)),
            ["5 key(s) before, 4 after"]
        );
    }

    #[test]
    fn mysql_tables_are_read_from_census_lines_only() {
        let out = "mysql: [Warning] Using a password on the command line interface can be insecure.\ncensus\tshop.orders\t3\t6410337321\ncensus\tshop.odd`na\tme\t0\t0\n";
        let Census::Tables(t) = parse("mariadb", out).unwrap() else {
            panic!()
        };
        assert_eq!(t["shop.orders"], (3, "6410337321".to_string()));
        // A tab in a name stays in the name.
        assert_eq!(t["shop.odd`na\tme"].0, 0);
        assert_eq!(parse("mysql", "").unwrap(), Census::Tables(BTreeMap::new()));
        assert!(parse("mysql", "census\tshop.x\tmany\t1").is_err());
    }

    #[test]
    fn only_known_kinds_have_a_command() {
        assert!(command("postgres").unwrap()[2].contains("psql"));
        assert!(command("redis").is_some());
        let mysql = command("mysql").unwrap();
        assert!(mysql[2].contains("MYSQL_PWD"));
        assert_eq!(mysql[4], MYSQL_CENSUS_GENERATOR_SQL);
        assert!(command("mongodb").is_none());
    }
}
