#!/usr/bin/env bash
# Records a few real lines for every log_line_prefix preset in
# grammars/prefixes.toml from the local Debian PostgreSQL 15 (run by hand as
# root; loopback only). Writes samples/prefixes/<preset>.log.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=/usr/lib/postgresql/15/bin
DIR=$(mktemp -d /tmp/pgtrail-prefixes-XXXX)
chown postgres: "$DIR"
PORT=55199
as_pg() { runuser -u postgres -- "$@"; }
as_pg "$BIN/initdb" -D "$DIR/data" --auth=trust -U postgres >/dev/null
cat >> "$DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
logging_collector = on
log_directory = 'log'
log_filename = 'current.log'
log_connections = on
log_disconnections = on
lc_messages = 'C'
log_timezone = 'UTC'
CONF
as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/startup.log" -w start >/dev/null
python3 - "$DIR" "$PORT" <<'PY'
import os, subprocess, sys, time, tomllib
d, port = sys.argv[1], sys.argv[2]
presets = tomllib.load(open("grammars/prefixes.toml", "rb"))["preset"]
log = os.path.join(d, "data", "log", "current.log")
def psql(*args, check=True):
    return subprocess.run(["runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/psql",
                           "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-X", "-q", *args],
                          capture_output=True, text=True, check=check)
for p in presets:
    prefix = p["prefix"].replace("'", "''")
    psql("-d", "postgres", "-c", f"ALTER SYSTEM SET log_line_prefix = '{prefix}'")
    psql("-d", "postgres", "-c", "SELECT pg_reload_conf()")
    time.sleep(0.5)
    start = os.path.getsize(log)
    psql("-d", "postgres", "-c", "SELECT 1", "-v", "ON_ERROR_STOP=1")
    env = dict(os.environ, PGAPPNAME="pgtrail sample")
    subprocess.run(["runuser", "-u", "postgres", "--", "env", "PGAPPNAME=pgtrail sample",
                    "/usr/lib/postgresql/15/bin/psql", "-h", "127.0.0.1", "-p", port, "-U", "postgres",
                    "-X", "-d", "nosuchdb", "-c", "SELECT 1"], capture_output=True)
    time.sleep(0.5)
    with open(log, "rb") as f:
        f.seek(start)
        chunk = f.read()
    with open(f"samples/prefixes/{p['name']}.log", "wb") as out:
        out.write(chunk)
    print(p["name"], len(chunk.splitlines()), "lines")
PY
as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
rm -rf "$DIR"
