//! End to end over TLS: PostgreSQL 15 with `ssl = on`, certificates from a throwaway CA and only
//! `hostssl` lines in `pg_hba.conf` for TCP; `walg backup-push` and `walg schedule --once`
//! connect through it under every `sslmode`, with and without a client certificate, and fail
//! with a message naming the mode and the failing check when a check fails.

use std::process::Output;

use crate::common::env_of;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::pg::{
    Cluster, ClusterOptions, PG_USER, describe_output, is_root, pg_tempdir, run_with_timeout,
    walg_as_pg, walg_bin, walg_command,
};
use crate::common::tlscerts::{Pki, Usage};
use tempfile::TempDir;

/// A TLS-only server (over TCP), its certificates and a storage folder.
struct Setup {
    pg: Cluster,
    pki: Pki,
    storage: TempDir,
}

impl Setup {
    /// The server presents `server.crt` (signed by `ca`, for `server_sans`); clients may log in
    /// as `certuser` only with a certificate from `ca`.
    fn new(server_sans: &[&str]) -> Setup {
        let pki = Pki::new();
        pki.ca("ca");
        pki.ca("otherca");
        pki.leaf("ca", "server", "server", Usage::Server, server_sans);
        pki.leaf("ca", "client", "certuser", Usage::Client, &[]);
        let storage = pg_tempdir("walgtlsstore");
        let prefix = storage.path().to_str().expect("utf-8").to_string();
        let archive = walg_command(&[("WALG_FILE_PREFIX", &prefix)], "wal-push %p");
        let quoted = |file: &str| format!("'{}'", pki.path(file).display());
        let options = ClusterOptions {
            extra_conf: vec![
                "ssl = on".to_string(),
                format!("ssl_cert_file = {}", quoted("server.crt")),
                format!("ssl_key_file = {}", quoted("server.key")),
                format!("ssl_ca_file = {}", quoted("ca.crt")),
            ],
            ..ClusterOptions::archiving(archive)
        };
        let mut pg = Cluster::init(options);
        let hba = pg.data_dir().join("pg_hba.conf");
        std::fs::write(
            &hba,
            "local all all trust\n\
             hostssl all certuser 127.0.0.1/32 cert\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .expect("write pg_hba.conf");
        crate::common::pg::hand_to_pg_user(&hba);
        pg.start();
        pg.psql("create role certuser login superuser");
        Setup { pg, pki, storage }
    }

    /// Runs walg as the PostgreSQL user over TCP to `host`, with `extra` settings.
    fn walg(&self, host: &str, extra: &[(&str, String)], args: &[&str]) -> Output {
        walg_as_pg(args, &env_of(&self.env(host, extra)), self.pg.root_dir())
    }

    /// Like [`Setup::walg`] with `HOME` set (`runuser` would reset it to the user's).
    fn walg_with_home(
        &self,
        home: &Path,
        host: &str,
        extra: &[(&str, String)],
        args: &[&str],
    ) -> Output {
        let home = format!("HOME={}", home.display());
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--", "env", &home]).arg(walg_bin());
            c
        } else {
            let mut c = Command::new("env");
            c.arg(&home).arg(walg_bin());
            c
        };
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("LC_ALL", "C")
            .current_dir(self.pg.root_dir())
            .args(args)
            .envs(self.env(host, extra));
        run_with_timeout(cmd, Duration::from_secs(300))
    }

    fn env(&self, host: &str, extra: &[(&str, String)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = vec![
            ("PGHOST".to_string(), host.to_string()),
            ("PGPORT".to_string(), self.pg.port().to_string()),
            ("PGUSER".to_string(), "postgres".to_string()),
            ("PGDATABASE".to_string(), "postgres".to_string()),
            (
                "WALG_FILE_PREFIX".to_string(),
                self.storage.path().display().to_string(),
            ),
        ];
        for (name, value) in extra {
            env.retain(|(n, _)| n != name);
            env.push((name.to_string(), value.clone()));
        }
        env
    }

    fn backup_push(&self, host: &str, extra: &[(&str, String)]) -> Output {
        let data = self.pg.data_dir().to_str().expect("utf-8").to_string();
        self.walg(host, extra, &["backup-push", &data])
    }

    fn cert(&self, file: &str) -> String {
        self.pki.path(file).display().to_string()
    }

    fn backups(&self) -> usize {
        let out = self.walg("127.0.0.1", &[], &["backup-list", "--json"]);
        assert!(out.status.success(), "{}", describe_output(&out));
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        list.as_array().map_or(0, Vec::len)
    }
}

fn mode(m: &str) -> (&'static str, String) {
    ("PGSSLMODE", m.to_string())
}

#[track_caller]
fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} must succeed\n{}",
        describe_output(out)
    );
}

#[track_caller]
fn assert_fails_with(out: &Output, what: &str, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(expected),
        "{what} must fail with '{expected}'\n{}",
        describe_output(out)
    );
}

#[test]
fn every_sslmode_against_a_tls_only_server() {
    let s = Setup::new(&["DNS:localhost", "IP:127.0.0.1"]);
    let ca = ("PGSSLROOTCERT", s.cert("ca.crt"));
    let other_ca = ("PGSSLROOTCERT", s.cert("otherca.crt"));
    let mut good = 0;

    // step: without TLS the server has no pg_hba.conf line for the session.
    let out = s.backup_push("127.0.0.1", &[mode("disable")]);
    assert_fails_with(&out, "sslmode=disable", "no encryption");

    // step: the weaker modes get TLS: allow after the refusal, prefer and require at once.
    for m in ["allow", "prefer", "require"] {
        assert_ok(&s.backup_push("127.0.0.1", &[mode(m)]), m);
        good += 1;
    }
    // The default is prefer.
    assert_ok(&s.backup_push("127.0.0.1", &[]), "no sslmode");
    good += 1;

    // step: verify-ca: the chain to the given CA, by IP address or host name.
    for host in ["127.0.0.1", "localhost"] {
        let out = s.backup_push(host, &[mode("verify-ca"), ca.clone()]);
        assert_ok(&out, "verify-ca with the right CA");
        good += 1;
    }
    let out = s.backup_push("127.0.0.1", &[mode("verify-ca"), other_ca.clone()]);
    assert_fails_with(
        &out,
        "verify-ca with another CA",
        "sslmode=verify-ca: the server certificate is signed by an unknown CA",
    );
    // require with a root certificate checks the chain, as libpq does.
    let out = s.backup_push("127.0.0.1", &[mode("require"), other_ca.clone()]);
    assert_fails_with(
        &out,
        "require with another CA",
        "sslmode=require: the server certificate is signed by an unknown CA",
    );
    let out = s.backup_push("127.0.0.1", &[mode("verify-ca")]);
    assert_fails_with(
        &out,
        "verify-ca without a CA",
        "sslmode=verify-ca: no root certificate",
    );

    // step: verify-full: the chain and the host name, for a name and for an IP address.
    for host in ["localhost", "127.0.0.1"] {
        let out = s.backup_push(host, &[mode("verify-full"), ca.clone()]);
        assert_ok(&out, "verify-full with the right CA and host name");
        good += 1;
    }
    let out = s.backup_push("localhost", &[mode("verify-full"), other_ca]);
    assert_fails_with(
        &out,
        "verify-full with another CA",
        "sslmode=verify-full: the server certificate is signed by an unknown CA",
    );

    // step: the schedule's cycle (its health query, then a backup) through verify-full.
    let data = s.pg.data_dir().to_str().expect("utf-8").to_string();
    let out = s.walg(
        "localhost",
        &[mode("verify-full"), ca.clone()],
        &["schedule", &data, "--retain", "100", "--once"],
    );
    assert_ok(&out, "schedule --once over verify-full");
    good += 1;

    // step: a unix socket never uses TLS, whatever the mode asks (no root certificate needed).
    let socket = s.pg.root_dir().display().to_string();
    assert_ok(
        &s.backup_push(&socket, &[mode("verify-full")]),
        "verify-full through a unix socket",
    );
    good += 1;

    assert_eq!(s.backups(), good, "one backup per successful push");
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_name() {
    let s = Setup::new(&["DNS:db.other.example"]);
    let ca = ("PGSSLROOTCERT", s.cert("ca.crt"));

    let out = s.backup_push("localhost", &[mode("verify-full"), ca.clone()]);
    assert_fails_with(
        &out,
        "verify-full against a certificate for another host",
        "sslmode=verify-full: the server certificate is for 'db.other.example', not 'localhost'",
    );
    let out = s.backup_push("127.0.0.1", &[mode("verify-full"), ca.clone()]);
    assert_fails_with(
        &out,
        "verify-full by IP against a certificate for another host",
        "not '127.0.0.1'",
    );
    // verify-ca checks the chain only.
    assert_ok(
        &s.backup_push("localhost", &[mode("verify-ca"), ca]),
        "verify-ca against a certificate for another host",
    );
    assert_eq!(s.backups(), 1);
}

#[test]
fn a_client_certificate_authenticates_the_session() {
    let s = Setup::new(&["DNS:localhost", "IP:127.0.0.1"]);
    let user = ("PGUSER", "certuser".to_string());
    let ca = ("PGSSLROOTCERT", s.cert("ca.crt"));

    // step: certuser may log in only with a certificate.
    let out = s.backup_push(
        "localhost",
        &[user.clone(), mode("verify-full"), ca.clone()],
    );
    assert_fails_with(&out, "certuser without a certificate", "certificate");

    // step: with PGSSLCERT and PGSSLKEY.
    let with_cert = [
        user.clone(),
        mode("verify-full"),
        ca.clone(),
        ("PGSSLCERT", s.cert("client.crt")),
        ("PGSSLKEY", s.cert("client.key")),
    ];
    assert_ok(
        &s.backup_push("localhost", &with_cert),
        "certuser with a certificate",
    );

    // step: the defaults in ~/.postgresql: root.crt, postgresql.crt, postgresql.key.
    let home = s.pki.dir().join("home");
    let dot = home.join(".postgresql");
    std::fs::create_dir_all(&dot).expect("mkdir ~/.postgresql");
    for dir in [&home, &dot] {
        crate::common::pg::hand_to_pg_user(dir);
    }
    s.pki.copy("ca.crt", &dot.join("root.crt"), 0o644);
    s.pki.copy("client.crt", &dot.join("postgresql.crt"), 0o644);
    s.pki.copy("client.key", &dot.join("postgresql.key"), 0o600);
    let data = s.pg.data_dir().to_str().expect("utf-8").to_string();
    let out = s.walg_with_home(
        &home,
        "localhost",
        &[user.clone(), mode("verify-full")],
        &["backup-push", &data],
    );
    assert_ok(&out, "the files in ~/.postgresql");

    // step: an encrypted key is refused with a clear error before anything is sent.
    s.pki.encrypted_key("client", "client-enc", "secret-pass");
    let encrypted = [
        user,
        mode("verify-full"),
        ca,
        ("PGSSLCERT", s.cert("client.crt")),
        ("PGSSLKEY", s.cert("client-enc.key")),
    ];
    let out = s.backup_push("localhost", &encrypted);
    assert_fails_with(&out, "an encrypted key", "the key is encrypted");
    assert!(!describe_output(&out).contains("secret-pass"));

    assert_eq!(s.backups(), 2);
}

#[test]
fn a_server_without_tls_is_refused_under_require_and_used_under_prefer() {
    let storage = pg_tempdir("walgtlsstore");
    let prefix = storage.path().to_str().expect("utf-8").to_string();
    let archive = walg_command(&[("WALG_FILE_PREFIX", &prefix)], "wal-push %p");
    let mut pg = Cluster::init(ClusterOptions::archiving(archive));
    pg.start();
    let data = pg.data_dir().to_str().expect("utf-8").to_string();
    let push = |m: &str| {
        let env = [
            ("PGHOST", "127.0.0.1".to_string()),
            ("PGPORT", pg.port().to_string()),
            ("PGUSER", "postgres".to_string()),
            ("PGDATABASE", "postgres".to_string()),
            ("WALG_FILE_PREFIX", prefix.clone()),
            mode(m),
        ];
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        walg_as_pg(&["backup-push", &data], &env, pg.root_dir())
    };
    for m in ["require", "verify-ca", "verify-full"] {
        let out = push(m);
        let expected = if m == "require" {
            "the server does not support TLS (sslmode=require)".to_string()
        } else {
            // Without root certificates the verifying modes stop before connecting.
            format!("sslmode={m}: no root certificate")
        };
        assert_fails_with(&out, m, &expected);
    }
    for m in ["disable", "allow", "prefer"] {
        assert_ok(&push(m), m);
    }
}

#[test]
fn prefer_falls_back_to_a_plain_session_when_the_server_refuses_tls_ones() {
    let s = Setup::new(&["DNS:localhost", "IP:127.0.0.1"]);
    let hba = s.pg.data_dir().join("pg_hba.conf");
    std::fs::write(
        &hba,
        "local all all trust\nhostnossl all all 127.0.0.1/32 trust\n",
    )
    .expect("write pg_hba.conf");
    s.pg.psql("select pg_reload_conf()");

    let out = s.backup_push("127.0.0.1", &[mode("require")]);
    assert_fails_with(&out, "require against hostnossl", "SSL encryption");
    for m in ["prefer", "allow", "disable"] {
        assert_ok(&s.backup_push("127.0.0.1", &[mode(m)]), m);
    }
    assert_eq!(s.backups(), 3);
}
