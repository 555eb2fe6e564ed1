//! `walg` against S3 through its settings, as deployments configure it: a shared credentials
//! file (a Kubernetes Secret mounted as a file) and a profile, a wrong secret, an endpoint that
//! is down.

mod common;

use std::time::{Duration, Instant};

use common::pg::{describe_output, walg};
use common::s3server::{ACCESS_KEY, BUCKET, REGION, S3Server, SECRET_KEY};

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
