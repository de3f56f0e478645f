//! A throwaway PostgreSQL cluster on a free loopback port, for the database secrets engine.
//!
//! [`Postgres::start`] runs `initdb` into a fresh temporary directory and starts `postgres`
//! listening on `127.0.0.1` only (its Unix socket in the same directory), with a superuser whose
//! password is random. TCP logins need a password (`scram-sha-256`), so a test that logs in
//! with generated credentials really checks them. The server is stopped (immediate shutdown)
//! and the directory removed when the value is dropped.
//!
//! PostgreSQL refuses to run as root: under root the cluster runs as the `postgres` system user
//! (the directory is handed to it); otherwise as the current user. Checks go through the `psql`
//! client, so the tests need no Rust PostgreSQL driver.
//!
//! The binaries are found under `$PG_BIN`, else the newest `/usr/lib/postgresql/*/bin` (Debian's
//! layout), else on `PATH`. `scripts/install-test-deps.sh` installs them
//! (`apt-get install -y postgresql`); a test that cannot find them fails saying so.

use std::os::unix::fs::MetadataExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{free_port, random_hex};

/// How long the cluster gets to accept logins.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping server gets before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The directory holding `initdb`, `postgres` and `psql`.
pub fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    if let Some((_, bin)) = newest {
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "PostgreSQL's initdb was not found (under /usr/lib/postgresql/*/bin or on PATH): \
             install it with `apt-get install -y postgresql` (or run \
             scripts/install-test-deps.sh), or name its bin directory with PG_BIN"
        )
    })
}

/// The user the cluster runs as: `None` for the current one, else (uid, gid) of `postgres`.
fn server_user() -> Option<(u32, u32)> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres") && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    });
    Some(ids.unwrap_or_else(|| {
        panic!(
            "running as root, and PostgreSQL refuses to: the `postgres` system user it would \
             run as does not exist (installing the postgresql package creates it)"
        )
    }))
}

/// A running PostgreSQL cluster, stopped on drop.
pub struct Postgres {
    child: Child,
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    superuser: String,
    password: String,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("port", &self.port)
            .field("superuser", &self.superuser)
            .finish_non_exhaustive()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate shutdown: the postmaster stops its backends and exits; the data is thrown
        // away anyway.
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A command run as the cluster's user.
fn as_server_user(program: &Path, user: Option<(u32, u32)>) -> Command {
    let mut cmd = Command::new(program);
    if let Some((uid, gid)) = user {
        // Under root, `uid` also drops the supplementary groups.
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn hand_over(path: &Path, user: Option<(u32, u32)>) {
    if let Some((uid, gid)) = user {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
    }
}

impl Postgres {
    /// Creates a cluster and starts it on a free loopback port.
    pub async fn start() -> Self {
        let bin = postgres_bin_dir();
        let user = server_user();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "kuvert-postgres-{}-{port}-{}",
            std::process::id(),
            random_hex(4)
        ));
        std::fs::create_dir_all(&dir).expect("create PostgreSQL work dir");
        hand_over(&dir, user);
        let superuser = "kuvert".to_owned();
        let password = random_hex(16);
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, &password).expect("write password file");
        hand_over(&pwfile, user);
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).expect("create server log");
        hand_over(&log_path, user);

        let data = dir.join("data");
        let out = as_server_user(&bin.join("initdb"), user)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                &superuser,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--encoding=UTF8", "--locale=C", "--no-sync"])
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", bin.join("initdb").display()));
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let child = as_server_user(&bin.join("postgres"), user)
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "fsync=off", "-c", "max_connections=50"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log handle")))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.join("postgres").display()));
        let pg = Postgres {
            child,
            dir,
            bin,
            port,
            superuser,
            password,
        };
        pg.wait_ready().await;
        pg
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self
                .query_as(&self.superuser, &self.password, "SELECT 1")
                .await
                .as_deref()
                == Ok("1")
            {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                panic!(
                    "PostgreSQL on port {} did not start in time; its log:\n{log}",
                    self.port
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's name.
    pub fn superuser(&self) -> &str {
        &self.superuser
    }

    /// The superuser's password.
    pub fn superuser_password(&self) -> &str {
        &self.password
    }

    /// The `connection_url` for Vault's `postgresql-database-plugin`, with its `{{username}}`
    /// and `{{password}}` placeholders (give the superuser's as `username` and `password`).
    pub fn vault_connection_url(&self) -> String {
        format!(
            "postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
            self.port
        )
    }

    /// Logs in over TCP as `user` with `password` and runs `sql`; the output rows (`psql -tA`,
    /// trimmed), or psql's error message when the login or the statement fails.
    pub async fn query_as(&self, user: &str, password: &str, sql: &str) -> Result<String, String> {
        let out = tokio::process::Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                user,
                "-d",
                "postgres",
                "-w",
                "-tA",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .env("PGSSLMODE", "disable")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("run psql: {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Runs `sql` as the superuser; panics when it fails.
    pub async fn query(&self, sql: &str) -> String {
        self.query_as(&self.superuser, &self.password, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Whether a role named `name` exists (`pg_roles`).
    pub async fn role_exists(&self, name: &str) -> bool {
        let escaped = name.replace('\'', "''");
        let count = self
            .query(&format!(
                "SELECT count(*) FROM pg_roles WHERE rolname = '{escaped}'"
            ))
            .await;
        count == "1"
    }
}
