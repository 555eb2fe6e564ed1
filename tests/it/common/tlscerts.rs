//! Throwaway certificate authorities and certificates made with `openssl`, for TLS tests.
//!
//! Every file lives in one temp directory owned by the PostgreSQL user (the server reads its key
//! and walg, run as that user, reads the client key); keys are mode 0600. EC P-256 keys, valid
//! for two days.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::pg::{describe_output, hand_to_pg_user, pg_tempdir, run_with_timeout};

const OPENSSL_TIMEOUT: Duration = Duration::from_secs(60);

/// A folder of certificate authorities, certificates and keys.
pub struct Pki {
    dir: TempDir,
}

/// What a certificate is for.
#[derive(Debug, Clone, Copy)]
pub enum Usage {
    Server,
    Client,
}

impl Pki {
    pub fn new() -> Pki {
        Pki {
            dir: pg_tempdir("walgtls"),
        }
    }

    /// The folder holding everything.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `NAME.crt` or `NAME.key` in the folder.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A self-signed CA: `NAME.crt`, `NAME.key`.
    pub fn ca(&self, name: &str) {
        openssl(
            self.dir(),
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        self.settle(name);
    }

    /// A certificate `NAME.crt` with key `NAME.key`, signed by the CA `ca`, with common name `cn`
    /// and, for a server, the subject alternative names `sans` (`DNS:x`, `IP:y`).
    pub fn leaf(&self, ca: &str, name: &str, cn: &str, usage: Usage, sans: &[&str]) {
        openssl(
            self.dir(),
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
        let mut ext = String::from("basicConstraints=CA:FALSE\n");
        match usage {
            Usage::Server => ext.push_str("extendedKeyUsage=serverAuth\n"),
            Usage::Client => ext.push_str("extendedKeyUsage=clientAuth\n"),
        }
        if !sans.is_empty() {
            ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
        }
        let ext_file = format!("{name}.ext");
        fs::write(self.path(&ext_file), ext).expect("write extensions");
        openssl(
            self.dir(),
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &ext_file,
            ],
        );
        self.settle(name);
    }

    /// `NAME.key` encrypted with `password`, as `TO.key`.
    pub fn encrypted_key(&self, name: &str, to: &str, password: &str) {
        openssl(
            self.dir(),
            &[
                "pkey",
                "-in",
                &format!("{name}.key"),
                "-aes256",
                "-passout",
                &format!("pass:{password}"),
                "-out",
                &format!("{to}.key"),
            ],
        );
        self.settle_file(&format!("{to}.key"), 0o600);
    }

    /// Copies `FROM` to `to` (a path), owned by the PostgreSQL user, with `mode`.
    pub fn copy(&self, from: &str, to: &Path, mode: u32) {
        fs::copy(self.path(from), to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
        fs::set_permissions(to, fs::Permissions::from_mode(mode)).expect("chmod copy");
        hand_to_pg_user(to);
    }

    fn settle(&self, name: &str) {
        self.settle_file(&format!("{name}.crt"), 0o644);
        self.settle_file(&format!("{name}.key"), 0o600);
    }

    fn settle_file(&self, file: &str, mode: u32) {
        let path = self.path(file);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
        hand_to_pg_user(&path);
    }
}

fn openssl(cwd: &Path, args: &[&str]) {
    let mut cmd = Command::new("openssl");
    cmd.args(args).current_dir(cwd);
    let out = run_with_timeout(cmd, OPENSSL_TIMEOUT);
    assert!(
        out.status.success(),
        "openssl {} failed (is the openssl package installed?)\n{}",
        args.join(" "),
        describe_output(&out)
    );
}
