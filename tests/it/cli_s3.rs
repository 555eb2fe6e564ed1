//! `walg` against S3 through its settings, as deployments configure it: a shared credentials
//! file (a Kubernetes Secret mounted as a file) and a profile, a wrong secret, an endpoint that
//! is down.

use std::time::{Duration, Instant};

use crate::common::pg::{describe_output, walg};
use crate::common::s3server::{ACCESS_KEY, BUCKET, REGION, S3Server, SECRET_KEY};

fn history_file(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("00000002.history");
    std::fs::write(&path, "1\t0/3000000\tno recovery target specified\n").expect("write");
    path
}

#[test]
fn credentials_from_a_shared_credentials_file_and_profile() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let creds = dir.path().join("credentials");
    std::fs::write(
        &creds,
        format!("[default]\naws_access_key_id=WRONGKEY\naws_secret_access_key=wrong\n\n[walg]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"),
    )
    .expect("write credentials");
    let endpoint = server.endpoint();
    let creds_path = creds.to_str().expect("utf-8");
    let prefix = format!("s3://{BUCKET}/k8s");
    let env = [
        ("WALG_S3_PREFIX", prefix.as_str()),
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_REGION", REGION),
        ("AWS_S3_FORCE_PATH_STYLE", "true"),
        ("AWS_SHARED_CREDENTIALS_FILE", creds_path),
        ("AWS_PROFILE", "walg"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("HOME", "/nonexistent"),
    ];
    let wal = history_file(dir.path());
    let out = walg(&["wal-push", wal.to_str().expect("utf-8")], &env);
    assert!(out.status.success(), "{}", describe_output(&out));
    let dest = dir.path().join("restored");
    let out = walg(
        &[
            "wal-fetch",
            "00000002.history",
            dest.to_str().expect("utf-8"),
        ],
        &env,
    );
    assert!(out.status.success(), "{}", describe_output(&out));
    assert_eq!(
        std::fs::read(&dest).expect("restored"),
        std::fs::read(&wal).expect("original")
    );

    // The default profile holds wrong keys: refused, a one-line error, no secret in it.
    let mut default_profile = env.to_vec();
    default_profile.retain(|(k, _)| *k != "AWS_PROFILE");
    let out = walg(
        &["wal-push", wal.to_str().expect("utf-8")],
        &default_profile,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(SECRET_KEY) && !stderr.contains("aws_secret_access_key"),
        "{stderr}"
    );
}

#[test]
fn wrong_secret_is_refused_without_leaking_it() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(String, String)> = server.walg_env("leak");
    for (k, v) in &mut env {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "not-the-secret-0123456789".to_string();
        }
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let wal = history_file(dir.path());
    let out = walg(&["wal-push", wal.to_str().expect("utf-8")], &env);
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("not-the-secret"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("ERROR:")).count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.contains("HINT: the storage refused the request"),
        "{stderr}"
    );
    // wal-fetch: refused credentials are not "end of WAL".
    let out = walg(
        &[
            "wal-fetch",
            "00000002.history",
            dir.path().join("x").to_str().expect("utf-8"),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(200), "{}", describe_output(&out));
}

#[test]
fn endpoint_down_is_200_within_the_deadline() {
    let mut server = S3Server::start();
    let mut env: Vec<(String, String)> = server.walg_env("down");
    server.stop();
    env.push(("S3_MAX_RETRIES".into(), "2".into()));
    env.push(("S3_CONNECT_TIMEOUT".into(), "1s".into()));
    env.push(("S3_REQUEST_TIMEOUT".into(), "2s".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let dest = dir.path().join("RECOVERYXLOG");
    let started = Instant::now();
    let out = walg(
        &[
            "wal-fetch",
            "000000010000000000000001",
            dest.to_str().expect("utf-8"),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(200), "{}", describe_output(&out));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
    assert!(!dest.exists());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unavailable"), "{stderr}");
    assert!(
        stderr.contains("HINT: the storage did not answer"),
        "{stderr}"
    );
}

/// Settings for the server with credentials from a shared credentials file whose `[walg]`
/// profile holds the keys, and the file's path.
fn profile_env(server: &S3Server, dir: &std::path::Path, prefix: &str) -> Vec<(String, String)> {
    let creds = dir.join("credentials");
    std::fs::write(
        &creds,
        format!("[walg]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"),
    )
    .expect("write credentials");
    [
        ("WALG_S3_PREFIX", format!("s3://{BUCKET}/{prefix}")),
        ("AWS_ENDPOINT", server.endpoint()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_S3_FORCE_PATH_STYLE", "true".to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            creds.to_str().expect("utf-8").to_string(),
        ),
        ("AWS_PROFILE", "walg".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("HOME", "/nonexistent".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn with(env: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = env.iter().filter(|(k, _)| k != name).cloned().collect();
    env.push((name.to_string(), value.to_string()));
    env
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn a_missing_profile_is_named_with_its_file() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = with(
        &profile_env(&server, dir.path(), "profile"),
        "AWS_PROFILE",
        "nosuch",
    );
    let wal = history_file(dir.path());
    let started = Instant::now();
    let out = walg(&["wal-push", wal.to_str().expect("utf-8")], &pairs(&env));
    assert_eq!(out.status.code(), Some(1), "{}", describe_output(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("ERROR:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    let expected = format!(
        "profile 'nosuch' (AWS_PROFILE) is not in '{}'",
        dir.path().join("credentials").display()
    );
    assert!(errors[0].ends_with(&expected), "{stderr}");
    assert!(
        !stderr.contains("IMDS") && !stderr.contains("metadata"),
        "{stderr}"
    );
}

#[test]
fn the_sdk_logs_only_at_devel_and_never_a_key_id() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = profile_env(&server, dir.path(), "quiet");
    let wal = history_file(dir.path());
    for level in ["NORMAL", "DEVEL"] {
        let env = with(&env, "WALG_LOG_LEVEL", level);
        let out = walg(&["wal-push", wal.to_str().expect("utf-8")], &pairs(&env));
        assert!(out.status.success(), "{level}: {}", describe_output(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains(ACCESS_KEY),
            "{level}: key id logged:\n{stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}'),
            "{level}: colour codes:\n{stderr}"
        );
        assert!(!stderr.contains("access_key_id"), "{level}:\n{stderr}");
        // walg's own lines at NORMAL: the archived file, nothing of the SDK.
        if level == "NORMAL" {
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "{stderr}");
            assert!(
                lines[0].starts_with("INFO: ") && lines[0].contains("archived as"),
                "{stderr}"
            );
        } else {
            assert!(
                stderr
                    .lines()
                    .any(|l| l.starts_with("DEBUG: ") && !l.contains("s3 request")),
                "the SDK says nothing at DEVEL:\n{stderr}"
            );
        }
    }
}
