#!/usr/bin/env bash
# Real database servers for the data-move tests, as images built FROM
# scratch out of Debian's packages installed on this machine (images cannot
# be pulled here): PostgreSQL 15 (postgresql-15) and Redis 7 (redis-server,
# redis-tools). Each image holds the binaries, the libraries ldd names for
# them, dash as /bin/sh for the entry script, and a passwd file with the
# unprivileged user they run as (uid 999, as in the official images).
#
#   bash testkit/db-images.sh [postgres-tag] [redis-tag] [mariadb-tag]
#
# MariaDB 10.11 (mariadb-server-core, mariadb-client-core) is built when a
# third tag is given: its data directory is made on this machine by
# mariadb-install-db and copied in; root logs in over the local socket,
# with the password of MARIADB_ROOT_PASSWORD (or of the file that
# MARIADB_ROOT_PASSWORD_FILE names) once one is given, as in the official
# image.
#
# Entry points behave like the official images' for what the tests use:
# PostgreSQL initialises an empty data directory (/var/lib/postgresql/data,
# user postgres, trust auth on the image's network) and listens on 5432;
# Redis keeps an append-only file in /data and listens on 6379.
set -euo pipefail
PG_TAG="${1:-dm-e2e/postgres:15}"
REDIS_TAG="${2:-dm-e2e/redis:7}"
MARIADB_TAG="${3:-}"
PG=/usr/lib/postgresql/15
for f in "$PG/bin/postgres" /usr/bin/redis-server /usr/bin/redis-cli; do
  [ -x "$f" ] || { echo "$f missing: apt-get install postgresql-15 redis-server redis-tools" >&2; exit 2; }
done

# Copies files (following links) into $root at the same paths, with every
# shared library they need.
add() {
  local root=$1; shift
  local f lib
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    if head -c 4 "$f" | grep -q ELF; then
      for lib in $(ldd "$f" 2>/dev/null | grep -oE '/[^ ]+' || true); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
      done
    fi
  done
}

base() {
  local root=$1 user=$2 home=$3
  mkdir -p "$root/etc" "$root/tmp" "$root/bin"
  chmod 1777 "$root/tmp"
  add "$root" /usr/bin/dash
  cp "$root/usr/bin/dash" "$root/bin/sh"
  printf 'root:x:0:0:root:/root:/bin/sh\n%s:x:999:999:%s:%s:/bin/sh\n' "$user" "$user" "$home" > "$root/etc/passwd"
  printf 'root:x:0:\n%s:x:999:\n' "$user" > "$root/etc/group"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# PostgreSQL
root="$work/pg/rootfs"
base "$root" postgres /var/lib/postgresql
add "$root" "$PG/bin/postgres" "$PG/bin/initdb" "$PG/bin/pg_ctl" "$PG/bin/psql" \
  "$PG/bin/pg_dump" "$PG/bin/pg_restore" "$PG/bin/pg_isready"
for so in "$PG"/lib/*.so; do
  case "$so" in */llvmjit*) continue ;; esac
  add "$root" "$so"
done
mkdir -p "$root/usr/share/postgresql"
cp -rL /usr/share/postgresql/15 "$root/usr/share/postgresql/"
mkdir -p "$root/usr/share"
cp -rL /usr/share/zoneinfo "$root/usr/share/"
# COPY does not keep owners: what the user writes goes in owned/, copied
# with --chown.
owned="$work/pg/owned"
mkdir -p "$owned/var/lib/postgresql/data" "$owned/var/run/postgresql"
chmod 700 "$owned/var/lib/postgresql/data"
cat > "$root/entrypoint" <<'EOF'
#!/bin/sh
set -e
PGDATA=/var/lib/postgresql/data
export PGDATA TZ=UTC
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  /usr/lib/postgresql/15/bin/initdb -D "$PGDATA" -U postgres --auth=trust --no-locale -E UTF8 > /dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
exec /usr/lib/postgresql/15/bin/postgres -D "$PGDATA"
EOF
chmod 755 "$root/entrypoint"
cat > "$work/pg/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 owned/ /
ENV PATH=/usr/lib/postgresql/15/bin:/bin:/usr/bin PGHOST=/var/run/postgresql PGUSER=postgres TZ=UTC
USER 999:999
STOPSIGNAL SIGINT
EXPOSE 5432
HEALTHCHECK --interval=1s --timeout=3s --retries=30 CMD ["/usr/lib/postgresql/15/bin/pg_isready", "-q"]
ENTRYPOINT ["/entrypoint"]
EOF
docker build -q -t "$PG_TAG" "$work/pg" > /dev/null

# Redis
root="$work/redis/rootfs"
base "$root" redis /data
add "$root" /usr/bin/redis-server /usr/bin/redis-cli
mkdir -p "$work/redis/owned/data"
cat > "$work/redis/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 owned/ /
ENV PATH=/bin:/usr/bin
USER 999:999
WORKDIR /data
EXPOSE 6379
HEALTHCHECK --interval=1s --timeout=3s --retries=30 CMD ["/usr/bin/redis-cli", "ping"]
ENTRYPOINT ["/usr/bin/redis-server", "--dir", "/data", "--appendonly", "yes", "--protected-mode", "no", "--bind", "0.0.0.0"]
EOF
docker build -q -t "$REDIS_TAG" "$work/redis" > /dev/null
echo "built $PG_TAG and $REDIS_TAG"
[ -n "$MARIADB_TAG" ] || exit 0

# MariaDB
[ -x /usr/sbin/mariadbd ] || { echo "/usr/sbin/mariadbd missing: apt-get install --no-install-recommends mariadb-server-core mariadb-client-core" >&2; exit 2; }
root="$work/maria/rootfs"
base "$root" mysql /var/lib/mysql
add "$root" /usr/sbin/mariadbd /usr/bin/mariadb
mkdir -p "$root/usr/share"
cp -rL /usr/share/mysql "$root/usr/share/"
owned="$work/maria/owned"
mkdir -p "$owned/var/lib" "$owned/run/mysqld"
# A small redo log: the data-move tests copy this volume.
mariadb-install-db --no-defaults --datadir="$owned/var/lib/mysql" --user=root \
  --auth-root-authentication-method=normal --skip-test-db --innodb-log-file-size=8M > "$work/maria/install.log" 2>&1 ||
  { cat "$work/maria/install.log" >&2; exit 1; }
cat > "$root/entrypoint" <<'EOF'
#!/bin/sh
set -e
P="${MARIADB_ROOT_PASSWORD:-}"
F="${MARIADB_ROOT_PASSWORD_FILE:-}"
if [ -z "$P" ] && [ -n "$F" ]; then read -r P < "$F" || true; fi
if [ -n "$P" ]; then
  printf "ALTER USER 'root'@'localhost' IDENTIFIED BY '%s';\n" "$P" > /tmp/init.sql
  set -- --init-file=/tmp/init.sql
fi
exec /usr/sbin/mariadbd --no-defaults --datadir=/var/lib/mysql --socket=/run/mysqld/mysqld.sock \
  --bind-address=0.0.0.0 --port=3306 --skip-name-resolve --innodb-log-file-size=8M \
  --lc-messages-dir=/usr/share/mysql --character-sets-dir=/usr/share/mysql/charsets "$@"
EOF
chmod 755 "$root/entrypoint"
cat > "$work/maria/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=999:999 owned/ /
ENV PATH=/bin:/usr/bin:/usr/sbin TZ=UTC
USER 999:999
EXPOSE 3306
ENTRYPOINT ["/entrypoint"]
EOF
docker build -q -t "$MARIADB_TAG" "$work/maria" > /dev/null
echo "built $MARIADB_TAG"
