//! A throwaway PostgreSQL cluster per test: `initdb` + `pg_ctl` on a temp dir and a free loopback port, run
//! as the `postgres` user when we are root (initdb refuses root), stopped on drop (also on panic), and by a
//! watchdog if the test process dies without unwinding.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running throwaway cluster; stopped and removed on drop.
pub struct PgCluster {
    /// `postgres://...` of its database.
    pub url: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The server options (port, socket dir, settings), for a restart on the same port.
    opts: String,
}

fn find_bin() -> Option<PathBuf> {
    if Path::new("/usr/local/bin/initdb").exists() && Path::new("/usr/local/bin/pg_ctl").exists() {
        return Some(PathBuf::from("/usr/local/bin"));
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    dirs.pop()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// A running cluster, or None (after a loud SKIPPED line) when the PostgreSQL binaries are absent.
    /// Tests trade durability for speed here (`fsync=off`); [`PgCluster::start_durable`] keeps it.
    pub fn start(test: &str) -> Option<PgCluster> {
        Self::start_with(test, "-c fsync=off -c full_page_writes=off")
    }

    /// As [`PgCluster::start`], with the server's default durability (`fsync` on): what benchmarks use,
    /// choosing `synchronous_commit` per database.
    pub fn start_durable(test: &str) -> Option<PgCluster> {
        Self::start_with(test, "")
    }

    fn start_with(test: &str, settings: &str) -> Option<PgCluster> {
        let Some(bin) = find_bin() else {
            eprintln!("\n*** SKIPPED {test}: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql-15 ***\n");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("tasker-store-pg-").tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(ok.success(), "chown postgres of the cluster dir failed");
        }
        let data = dir.path().join("data");
        let out = as_postgres(&bin, "initdb")
            .current_dir(dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 {settings} -c max_connections=200",
            dir.path().display()
        );
        let cluster = PgCluster {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin: bin.clone(),
            dir,
            opts,
        };
        // Watchdog: stops the cluster once this process is gone, whatever killed it.
        let pg_ctl = bin.join("pg_ctl");
        let stop = if is_root() {
            format!(
                "runuser -u postgres -- {} -D {} stop -m immediate",
                pg_ctl.display(),
                data.display()
            )
        } else {
            format!("{} -D {} stop -m immediate", pg_ctl.display(), data.display())
        };
        let script = format!(
            "while [ -d /proc/{} ]; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {}",
            std::process::id(),
            cluster.dir.path().display()
        );
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        cluster.start_server();
        Some(cluster)
    }

    /// Starts the server (again), on the same port; waits until it accepts connections.
    pub fn start_server(&self) {
        let out = as_postgres(&self.bin, "pg_ctl")
            .current_dir(self.dir.path())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &self.opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops the server at once (connections are cut), keeping the cluster for `start_server`.
    #[allow(dead_code)] // used by the tests that take the server away mid-run, not by every includer
    pub fn stop_server(&self) {
        assert!(self.pg_ctl_stop().unwrap().success(), "pg_ctl stop failed");
    }

    /// `pg_ctl stop -m immediate`, waiting for the server to be gone.
    fn pg_ctl_stop(&self) -> std::io::Result<std::process::ExitStatus> {
        as_postgres(&self.bin, "pg_ctl")
            .current_dir(self.dir.path())
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl_stop();
    }
}
