//! Live attacks against the real PostgreSQL 15 installed on the machine
//! (shared reference §6): a newline in the startup-packet user name forging
//! a log line, and an application name imitating the TLS suffix of
//! `connection authorized`. The server runs on loopback only, as the
//! `postgres` OS user, in a temporary directory, and is stopped by the test.
//!
//! Needs root (to run the server as `postgres`) and the Debian
//! `postgresql-15` package. Without them the test says so and passes,
//! unless `PGTRAIL_REQUIRE_LIVE=1` (set by `.ci/run`) makes it fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::common::{parse_file, str_field};

const BIN: &str = "/usr/lib/postgresql/15/bin";
const RDS_PREFIX: &str = "%t:%r:%u@%d:[%p]:";
const FORGED_USER: &str = "evil\"\n2030-01-01 00:00:00 UTC:10.0.0.1(5555):admin@postgres:[1]";
const SPOOF_APP: &str =
    "psql SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)";

struct Server {
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            &self.data(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Server {
    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("data").join("log")
    }
}

fn as_postgres(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("runuser")
        .arg("-u")
        .arg("postgres")
        .arg("--")
        .args(args)
        .output()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Starts a throwaway cluster, or explains why it cannot.
fn start_server() -> Result<Server, String> {
    if !Path::new(BIN).join("postgres").exists() {
        return Err(format!(
            "{BIN}/postgres not found (apt-get install postgresql-15)"
        ));
    }
    let dir = std::env::temp_dir().join(format!("pgtrail-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let chown = Command::new("chown")
        .args(["postgres:postgres", &dir.display().to_string()])
        .output();
    if !chown.is_ok_and(|o| o.status.success()) {
        return Err("cannot chown the cluster directory to postgres (not root?)".into());
    }
    let server = Server {
        dir,
        port: free_port(),
    };
    let init = as_postgres(&[
        &format!("{BIN}/initdb"),
        "-D",
        &server.data(),
        "--auth=trust",
        "-U",
        "postgres",
    ])
    .map_err(|e| e.to_string())?;
    if !init.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        ));
    }
    let conf = format!(
        "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nlogging_collector = on\nlog_directory = 'log'\nlog_filename = 'postgresql.log'\nlog_destination = 'stderr,csvlog,jsonlog'\nlog_line_prefix = '{RDS_PREFIX}'\nlog_connections = on\nlog_disconnections = on\nlc_messages = 'C'\nlog_timezone = 'UTC'\nssl = off\n",
        server.port,
        server.dir.display()
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(server.dir.join("data/postgresql.conf"))
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(|e| e.to_string())?;
    // Only database `postgres` is reachable: template1 has no hba entry.
    std::fs::write(
        server.dir.join("data/pg_hba.conf"),
        "host postgres all 127.0.0.1/32 trust\n",
    )
    .map_err(|e| e.to_string())?;
    // The postmaster inherits pg_ctl's stdout/stderr: point them at a file,
    // not at pipes this process would wait on.
    let startup_log = server.dir.join("startup.log");
    let start = Command::new("runuser")
        .args([
            "-u",
            "postgres",
            "--",
            &format!("{BIN}/pg_ctl"),
            "-D",
            &server.data(),
        ])
        .args(["-w", "-t", "30", "-l"])
        .arg(&startup_log)
        .arg("start")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !start.success() {
        let log = std::fs::read_to_string(&startup_log).unwrap_or_default();
        return Err(format!("pg_ctl start failed: {log}"));
    }
    Ok(server)
}

/// A protocol 3.0 startup packet with the given parameters.
fn startup_packet(params: &[(&str, &str)]) -> Vec<u8> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k.as_bytes());
        body.push(0);
        body.extend_from_slice(v.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend(body);
    packet
}

/// Sends a startup packet; for a trusted login, waits for ReadyForQuery and
/// sends Terminate.
fn connect_raw(port: u16, params: &[(&str, &str)]) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    stream
        .write_all(&startup_packet(params))
        .expect("send startup");
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
        if let Some(z) = find_message(&seen, b'Z') {
            let _ = z;
            let _ = stream.write_all(&[b'X', 0, 0, 0, 4]);
            break;
        }
        if find_message(&seen, b'E').is_some() {
            break;
        }
    }
}

/// True when a complete backend message of type `kind` is in `data`.
fn find_message(data: &[u8], kind: u8) -> Option<usize> {
    let mut at = 0;
    while at + 5 <= data.len() {
        let len =
            u32::from_be_bytes([data[at + 1], data[at + 2], data[at + 3], data[at + 4]]) as usize;
        if data[at] == kind && at + 1 + len <= data.len() {
            return Some(at);
        }
        at += 1 + len;
    }
    None
}

fn stop(server: &Server) {
    let _ = as_postgres(&[
        &format!("{BIN}/pg_ctl"),
        "-D",
        &server.data(),
        "-m",
        "fast",
        "-w",
        "stop",
    ]);
}

fn events_of(path: &Path) -> Vec<Value> {
    let (code, events, stderr) = parse_file(path);
    assert_eq!(code, 0, "{}: {stderr}", path.display());
    events
}

#[test]
fn forged_lines_and_spoofed_tls_against_a_real_server() {
    let server = match start_server() {
        Ok(s) => s,
        Err(why) => {
            if std::env::var("PGTRAIL_REQUIRE_LIVE").is_ok_and(|v| v == "1") {
                panic!("live PostgreSQL test required but cannot run: {why}");
            }
            eprintln!("SKIPPED live PostgreSQL test: {why}");
            return;
        }
    };
    connect_raw(
        server.port,
        &[("user", FORGED_USER), ("database", "template1")],
    );
    connect_raw(
        server.port,
        &[
            ("user", "postgres"),
            ("database", "postgres"),
            ("application_name", SPOOF_APP),
        ],
    );
    stop(&server);

    let log = server.log_dir().join("postgresql.log");
    let stderr_events = events_of(&log);
    // The forged record is one suspect event, with the broken line and its tail.
    let suspects: Vec<&Value> = stderr_events
        .iter()
        .filter(|e| str_field(e, "event") == Some("suspect"))
        .collect();
    assert_eq!(suspects.len(), 1, "{stderr_events:#?}");
    assert_eq!(
        str_field(suspects[0], "suspect_reason"),
        Some("broken_prefix")
    );
    assert!(
        suspects[0]["related_sources"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(str_field(suspects[0], "client_addr"), Some("127.0.0.1"));
    // Nothing the attacker wrote became an event.
    for e in &stderr_events {
        assert_ne!(str_field(e, "user"), Some("admin"), "forged event: {e}");
        assert!(
            !str_field(e, "time").unwrap_or("").starts_with("2030"),
            "forged event: {e}"
        );
        assert_ne!(
            str_field(e, "client_addr"),
            Some("10.0.0.1"),
            "forged event: {e}"
        );
    }
    // The plaintext login whose application name imitates TLS: stderr cannot
    // tell, and says so.
    let authorized: Vec<&Value> = stderr_events
        .iter()
        .filter(|e| str_field(e, "event") == Some("authorized"))
        .collect();
    assert_eq!(authorized.len(), 1, "{stderr_events:#?}");
    assert_eq!(authorized[0]["ssl_unverified"], Value::Bool(true));

    // csvlog and jsonlog: the forged name is inside a quoted field, and the
    // real application name on later records unmasks the fake TLS text.
    for name in ["postgresql.csv", "postgresql.json"] {
        let events = events_of(&server.log_dir().join(name));
        assert!(
            events
                .iter()
                .all(|e| str_field(e, "event") != Some("suspect")),
            "{name}: {events:#?}"
        );
        let failed: Vec<&Value> = events
            .iter()
            .filter(|e| str_field(e, "event") == Some("auth_failed"))
            .collect();
        assert_eq!(failed.len(), 1, "{name}");
        assert_eq!(str_field(failed[0], "failure_class"), Some("no_hba_entry"));
        assert_eq!(str_field(failed[0], "user"), Some(FORGED_USER));
        let authorized: Vec<&Value> = events
            .iter()
            .filter(|e| str_field(e, "event") == Some("authorized"))
            .collect();
        assert_eq!(authorized.len(), 1, "{name}");
        assert_eq!(
            str_field(authorized[0], "application_name"),
            Some(SPOOF_APP),
            "{name}"
        );
        assert!(
            authorized[0].get("ssl_protocol").is_none(),
            "{name}: {}",
            authorized[0]
        );
        assert!(authorized[0].get("ssl_unverified").is_none(), "{name}");
    }
}
