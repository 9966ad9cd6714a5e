//! Harness for vq's server-level tests: a throwaway PostgreSQL cluster (owned by the
//! `postgres` OS user, extension preloaded) loaded with tests/fixture.sql, a running
//! `vq serve`, and a minimal HTTP/1.1 client. `VQ_PG_BIN` selects the PostgreSQL build.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// PostgreSQL binaries: `VQ_PG_BIN`, else Debian's PostgreSQL 15.
pub fn pg_bin() -> String {
    std::env::var("VQ_PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".to_string())
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Runs a PostgreSQL binary as `postgres` (sudo when root).
fn pg_cmd(bin: &str, args: &[&str]) -> Output {
    let path = format!("{}/{bin}", pg_bin());
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    let out = if root {
        Command::new("sudo")
            .args(["-u", "postgres", "-H", &path])
            .args(args)
            .output()
    } else {
        Command::new(&path).args(args).output()
    };
    let out = out.unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(
        out.status.success(),
        "{bin} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A running throwaway cluster with the fixture loaded; stopped and removed on drop.
pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// initdb, start (vectorize_quant preloaded: shared live counters), load the fixture.
    pub fn start() -> Cluster {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("vq-test-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["postgres:postgres", dir.to_str().unwrap()])
            .status();
        let d = dir.to_str().unwrap();
        pg_cmd(
            "initdb",
            &["-D", d, "-A", "trust", "-U", "postgres", "--no-sync"],
        );
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{d}'\nshared_preload_libraries = 'vectorize_quant'\nfsync = off\n"
        );
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join("postgresql.conf"))
            .unwrap()
            .write_all(conf.as_bytes())
            .unwrap();
        let log = format!("{d}/server.log");
        pg_cmd("pg_ctl", &["-D", d, "-l", &log, "-w", "start"]);
        let c = Cluster { dir, port };
        let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixture.sql");
        let out = Command::new(format!("{}/psql", pg_bin()))
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-f",
                fixture,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "fixture failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    /// A libpq URL for `user`.
    pub fn url(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.port
        )
    }

    /// A superuser connection for ground truth.
    pub fn sql(&self) -> postgres::Client {
        postgres::Client::connect(&self.url("postgres"), postgres::NoTls).expect("connect")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let d = self.dir.to_str().unwrap().to_string();
        let path = format!("{}/pg_ctl", pg_bin());
        let _ = Command::new("sudo")
            .args([
                "-u",
                "postgres",
                "-H",
                &path,
                "-D",
                &d,
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A running `vq serve`; killed on drop.
pub struct Vq {
    pub child: Child,
    pub port: u16,
}

impl Vq {
    /// Starts `vq serve` with extra args and waits for /healthz.
    pub fn serve(database_url: &str, extra: &[&str]) -> Vq {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_vq"))
            .args([
                "serve",
                "--database-url",
                database_url,
                "--listen",
                &listen,
                "--sample-interval",
                "0.5",
            ])
            .args(extra)
            .env_remove("VQ_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn vq");
        let v = Vq { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = v.try_get("/healthz") {
                return v;
            }
            assert!(Instant::now() < deadline, "vq did not start");
            sleep(Duration::from_millis(100));
        }
    }

    fn try_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http(self.port, "GET", path, None, None)
    }

    /// A request; the body is parsed as JSON.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (u16, Value) {
        let (status, text) = http(self.port, method, path, body, token).expect("http");
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"));
        (status, v)
    }

    /// GET returning raw text.
    pub fn get_text(&self, path: &str) -> (u16, String) {
        http(self.port, "GET", path, None, None).expect("http")
    }
}

impl Drop for Vq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request with `Connection: close`; returns (status, body).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    let body = body.unwrap_or("");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let _ = s.write_all(body.as_bytes()); // the server may answer (413) before reading it all
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    Ok((
        status,
        if chunked {
            dechunk(rest)
        } else {
            rest.to_string()
        },
    ))
}

/// Decodes a chunked body.
fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
