#!/usr/bin/env bash
# benches/record-mixed.sh — record benches/data/pgbench-rds/postgresql.log: a
# real PostgreSQL 15 log where connection lines are a minority, for the
# "non-connection records cost almost nothing" side of issue 4.
#
# The bundled samples (and the 1 GB benchmark log scaled from
# samples/pg15/rds) are almost all connection lines. Production logs rarely
# are: with log_min_duration_statement = 0 (a common audit setting) every
# statement is a line too. This script runs a throwaway Debian 15 cluster
# with the RDS prefix, log_connections and log_disconnections on and every
# statement logged with its duration, and drives it with pgbench: a phase
# with a new connection per transaction (-C, like short-lived app or
# serverless connections), a phase over persistent connections, and a few
# logins with a wrong password. Nothing in the log is edited.
#
# Run by hand, as root, on Debian 12 with postgresql-15 (not in CI):
#   benches/record-mixed.sh            # about 30 s
# Then scale it like the main benchmark log:
#   benches/scale.py --input benches/data/pgbench-rds/postgresql.log \
#       --size 1G --out /work/bench-data/pgbench-1G.log
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT="$REPO/benches/data/pgbench-rds"
PORT=${PORT:-55432}
SECONDS_C=${SECONDS_C:-4}        # pgbench -C phase
SECONDS_P=${SECONDS_P:-2}        # persistent-connection phase
D=$(mktemp -d /tmp/pgtrail-mixed-XXXXXX)
chown postgres "$D"
cleanup() {
    runuser -u postgres -- "$BIN/pg_ctl" -D "$D/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$D"
}
trap cleanup EXIT

as_pg() { runuser -u postgres -- "$@"; }
echo 'postgres-secret' > "$D/pw"; chown postgres "$D/pw"
as_pg "$BIN/initdb" -D "$D/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$D/pw" >/dev/null
cat >> "$D/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$D'
logging_collector = on
log_directory = '$D/log'
log_filename = 'postgresql.log'
log_line_prefix = '%t:%r:%u@%d:[%p]:'
log_connections = on
log_disconnections = on
log_min_duration_statement = 0
log_checkpoints = on
log_autovacuum_min_duration = 0
lc_messages = 'C'
log_timezone = 'UTC'
CONF
as_pg "$BIN/pg_ctl" -D "$D/data" -l "$D/startup.log" -w start >/dev/null
psql_su() { as_pg psql -X -q -h "$D" -p "$PORT" -U postgres "$@"; }
psql_su -d postgres -c "CREATE ROLE app LOGIN PASSWORD 'app-secret'" \
    -c "CREATE DATABASE bench OWNER app"
export PGPASSWORD=app-secret PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=app
pgbench -i -q -s 1 bench >/dev/null 2>&1
pgbench -C -c 4 -j 2 -T "$SECONDS_C" bench >/dev/null 2>&1
pgbench -c 4 -j 2 -T "$SECONDS_P" bench >/dev/null 2>&1
for _ in $(seq 20); do
    PGPASSWORD=wrong psql -X -q -d bench -c 'select 1' >/dev/null 2>&1 || true
done
as_pg "$BIN/pg_ctl" -D "$D/data" -m fast -w stop >/dev/null
mkdir -p "$OUT"
cp "$D/log/postgresql.log" "$OUT/postgresql.log"
{
    echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ) by benches/record-mixed.sh"
    echo "server: $("$BIN/postgres" --version)"
    echo "pgbench: $(pgbench --version)"
    echo "phases: pgbench -i -s 1; pgbench -C -c 4 -j 2 -T $SECONDS_C; pgbench -c 4 -j 2 -T $SECONDS_P; 20 logins with a wrong password"
    echo "settings: log_line_prefix='%t:%r:%u@%d:[%p]:' log_connections=on log_disconnections=on log_min_duration_statement=0 log_checkpoints=on log_autovacuum_min_duration=0 lc_messages=C log_timezone=UTC; pg_hba: scram-sha-256 on 127.0.0.1"
} > "$OUT/meta.txt"
wc -lc "$OUT/postgresql.log"
