//! A throwaway S3 server for tests: `s3s-fs` on 127.0.0.1, on a free port, storing into a
//! temp folder, checking SigV4 signatures against fixed test credentials.
//!
//! The binary is found via `S3S_FS_BIN`, then `PATH`, then `~/.cargo/bin/s3s-fs`. When it is
//! missing, tests fail (never skip) and say how to install it:
//! `cargo install s3s-fs@0.14.1 --locked --features binary`.
//!
//! Nothing here reaches beyond loopback: clients are given explicit credentials and the
//! endpoint `http://127.0.0.1:<port>`, and `.cargo/config.toml` sets
//! `AWS_EC2_METADATA_DISABLED=true` for every test process.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use walg::storage::s3::{S3Credentials, S3Settings};
use walg::util::secret::Secret;

/// Access key id the server accepts.
pub const ACCESS_KEY: &str = "walgtestaccesskey";
/// Secret key the server accepts.
pub const SECRET_KEY: &str = "walgtestsecretkey0123456789abcdef";
/// The bucket created at start.
pub const BUCKET: &str = "walg-test";
/// The region clients sign for.
pub const REGION: &str = "us-east-1";

const INSTALL_HINT: &str = "install it with: cargo install s3s-fs@0.14.1 --locked --features binary \
                            (or point S3S_FS_BIN at the binary)";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running (or stopped) s3s-fs. Killed on drop.
pub struct S3Server {
    bin: PathBuf,
    port: u16,
    /// Holds `data/` (the server root; one folder per bucket) and `s3s-fs.log`.
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl S3Server {
    /// Starts a server with the test bucket; panics (failing the test) if it cannot.
    pub fn start() -> S3Server {
        assert_eq!(
            std::env::var("AWS_EC2_METADATA_DISABLED").ok().as_deref(),
            Some("true"),
            "S3 tests must run with AWS_EC2_METADATA_DISABLED=true (set in .cargo/config.toml)"
        );
        let bin = find_binary();
        let dir = tempfile::Builder::new()
            .prefix("walg-s3s-")
            .tempdir()
            .expect("creating a temp folder");
        fs::create_dir_all(dir.path().join("data").join(BUCKET))
            .expect("creating the bucket folder");
        let mut server = S3Server {
            bin,
            port: 0,
            dir,
            child: None,
        };
        let mut last_error = String::new();
        // A free port can be taken between probing and binding: try a few.
        for _ in 0..5 {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("could not start s3s-fs: {last_error}");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn bucket(&self) -> &str {
        BUCKET
    }

    /// The server's root folder (bucket folders and its internal upload files live here).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Kills the server; the port and the data stay for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data folder.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The old socket may linger for a moment.
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(200))
                }
                Err(e) => panic!("could not restart s3s-fs on port {}: {e}", self.port),
            }
        }
    }

    /// S3 settings for the walg library: this server, the test bucket, `root` as key prefix,
    /// static test credentials, no instance metadata, and small deadlines.
    pub fn settings(&self, root: &str) -> S3Settings {
        S3Settings {
            bucket: BUCKET.to_string(),
            root: root.to_string(),
            region: Some(REGION.to_string()),
            endpoint: Some(self.endpoint()),
            force_path_style: true,
            credentials: S3Credentials {
                access_key_id: Some(ACCESS_KEY.to_string()),
                secret_access_key: Some(Secret::new(SECRET_KEY)),
                ec2_metadata_disabled: true,
                ..S3Credentials::default()
            },
            storage_class: "STANDARD".to_string(),
            sse: None,
            sse_kms_id: None,
            ca_cert_file: None,
            max_part_size: 5 * 1024 * 1024,
            upload_concurrency: 4,
            max_retries: 2,
            download_retries: 2,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            delete_batch_size: 1000,
        }
    }

    /// The environment a `walg` subprocess needs to use this server with `prefix`.
    pub fn walg_env(&self, prefix: &str) -> Vec<(String, String)> {
        let prefix = prefix.trim_matches('/');
        [
            ("WALG_S3_PREFIX", format!("s3://{BUCKET}/{prefix}")),
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_S3_FORCE_PATH_STYLE", "true".to_string()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_string()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Like [`S3Server::walg_env`], but the keys are in a shared credentials file written into
    /// `dir` (as a Kubernetes Secret mounted as a file): its path, unlike the keys, is what a
    /// `restore_command` written by `backup-fetch -R` carries.
    pub fn walg_env_with_credentials_file(
        &self,
        prefix: &str,
        dir: &Path,
    ) -> Vec<(String, String)> {
        let file = dir.join("credentials");
        fs::write(
            &file,
            format!(
                "[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"
            ),
        )
        .expect("writing the credentials file");
        let mut env: Vec<(String, String)> = self
            .walg_env(prefix)
            .into_iter()
            .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
            .collect();
        env.push((
            "AWS_SHARED_CREDENTIALS_FILE".into(),
            file.display().to_string(),
        ));
        env
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("s3s-fs.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let log_err = log.try_clone().map_err(|e| e.to_string())?;
        let mut child = Command::new(&self.bin)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--access-key")
            .arg(ACCESS_KEY)
            .arg("--secret-key")
            .arg(SECRET_KEY)
            .arg(self.data_dir())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(|e| format!("running {}: {e}", self.bin.display()))?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "s3s-fs exited with {status}; log: {}",
                    log_tail(&log_path)
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "s3s-fs did not listen on {addr} within {START_TIMEOUT:?}; log: {}",
                    log_tail(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free port");
    listener
        .local_addr()
        .expect("reading the bound address")
        .port()
}

fn log_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(2000);
    text.get(start..).unwrap_or("").trim().to_string()
}

/// `S3S_FS_BIN`, then `PATH`, then `~/.cargo/bin/s3s-fs`.
fn find_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("S3S_FS_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "S3S_FS_BIN={} is not a file; {INSTALL_HINT}",
            bin.display()
        );
        return bin;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("s3s-fs"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let in_cargo_home =
        std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    on_path
        .into_iter()
        .chain(in_cargo_home)
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("the s3s-fs test server was not found; {INSTALL_HINT}"))
}
