//! The command line as users and PostgreSQL see it: help, version, exit codes, one-line errors.

use assert_cmd::Command;
use predicates::prelude::*;

fn walg() -> Command {
    let mut cmd = Command::cargo_bin("walg").expect("walg binary");
    // A clean environment: no settings from the machine running the tests.
    cmd.env_clear()
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

#[test]
fn help_lists_commands() {
    walg()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("wal-push").and(predicate::str::contains("wal-fetch")));
    walg()
        .args(["wal-fetch", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("74").and(predicate::str::contains("200")));
}

#[test]
fn version_has_walg_shape() {
    walg().arg("--version").assert().success().stdout(
        predicate::str::starts_with("walg version ").and(predicate::str::contains("PostgreSQL")),
    );
}

#[test]
fn usage_errors_exit_1() {
    walg().arg("wal-push").assert().code(1);
    walg().arg("no-such-command").assert().code(1);
}

#[test]
fn no_storage_is_a_clear_error() {
    walg().args(["wal-push", "/tmp/x"]).assert().code(1).stderr(
        predicate::str::contains("no storage is configured")
            .and(predicate::str::contains("HINT: set WALG_S3_PREFIX")),
    );
}

#[test]
fn bad_setting_names_setting_and_source() {
    let dir = tempfile::tempdir().unwrap();
    walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .env("WALG_UPLOAD_CONCURRENCY", "many")
        .args(["wal-push", "/tmp/x"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "invalid WALG_UPLOAD_CONCURRENCY value 'many' (from environment): not a whole number",
        ));
    let config = dir.path().join("walg.json");
    std::fs::write(&config, r#"{"WALG_COMPRESSION_METHOD": "gzip"}"#).unwrap();
    walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .arg("--config")
        .arg(&config)
        .args(["wal-push", "/tmp/x"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("WALG_COMPRESSION_METHOD")
                .and(predicate::str::contains("walg.json")),
        );
}

#[test]
fn flag_beats_env_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let (flag_store, env_store, file_store) = (
        dir.path().join("flag"),
        dir.path().join("env"),
        dir.path().join("file"),
    );
    for store in [&flag_store, &env_store, &file_store] {
        std::fs::create_dir(store).unwrap();
    }
    let config = dir.path().join("walg.json");
    std::fs::write(
        &config,
        format!(r#"{{"WALG_FILE_PREFIX": "{}"}}"#, file_store.display()),
    )
    .unwrap();
    let wal = dir.path().join("00000002.history");
    std::fs::write(&wal, "1\t0/3000000\tno recovery target specified\n").unwrap();

    walg()
        .arg("--config")
        .arg(&config)
        .arg("wal-push")
        .arg(&wal)
        .assert()
        .success();
    assert!(file_store.join("wal_005/00000002.history.lz4").is_file());
    walg()
        .env("WALG_FILE_PREFIX", &env_store)
        .arg("--config")
        .arg(&config)
        .arg("wal-push")
        .arg(&wal)
        .assert()
        .success();
    assert!(env_store.join("wal_005/00000002.history.lz4").is_file());
    walg()
        .env("WALG_FILE_PREFIX", &env_store)
        .arg("--config")
        .arg(&config)
        .arg("--walg-file-prefix")
        .arg(&flag_store)
        .arg("wal-push")
        .arg(&wal)
        .assert()
        .success();
    assert!(flag_store.join("wal_005/00000002.history.lz4").is_file());
}

#[test]
fn unknown_walg_setting_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .env("WALG_NO_SUCH_SETTING", "1")
        .args(["wal-fetch", "00000005.history"])
        .arg(dir.path().join("out"))
        .assert()
        .code(74)
        .stderr(
            predicate::str::contains("WARNING:")
                .and(predicate::str::contains("WALG_NO_SUCH_SETTING is unknown")),
        );
}

#[test]
fn encryption_settings_are_refused_without_showing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .env("WALG_LIBSODIUM_KEY", "super-secret-key-material")
        .args(["wal-push", "/tmp/x"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("WALG_LIBSODIUM_KEY")
                .and(predicate::str::contains("super-secret").not()),
        );
}

#[test]
fn wal_fetch_missing_is_74_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    let dest = dir.path().join("RECOVERYXLOG");
    walg()
        .env("WALG_FILE_PREFIX", store.path())
        .args(["wal-fetch", "0000000100000000000000AA"])
        .arg(&dest)
        .assert()
        .code(74);
    assert!(!dest.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn wal_fetch_failures_other_than_missing_stop_recovery() {
    // A bad setting must not look like "end of WAL" to PostgreSQL: exit above 125.
    walg()
        .env("WALG_FILE_PREFIX", "/tmp")
        .env("WALG_DOWNLOAD_CONCURRENCY", "-3")
        .args(["wal-fetch", "0000000100000000000000AA", "/tmp/never"])
        .assert()
        .code(200);
}

#[test]
fn corrupt_stored_segment_is_an_error_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("wal_005")).unwrap();
    // Stored uncompressed (WAL-G's `none`), but not a segment: garbage of the wrong size.
    std::fs::write(
        store.join("wal_005/000000010000000000000003"),
        vec![0x55u8; 4096],
    )
    .unwrap();
    let dest = dir.path().join("RECOVERYXLOG");
    walg()
        .env("WALG_FILE_PREFIX", &store)
        .args(["wal-fetch", "000000010000000000000003"])
        .arg(&dest)
        .assert()
        .code(200)
        .stderr(predicate::str::contains("corrupt"));
    assert!(!dest.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        leftovers,
        vec![std::ffi::OsString::from("store")],
        "no temp file left"
    );
}

#[test]
fn wal_fetch_refuses_existing_destination() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let wal = dir.path().join("00000002.history");
    std::fs::write(&wal, "1\t0/3000000\tno recovery target specified\n").unwrap();
    walg()
        .env("WALG_FILE_PREFIX", &store)
        .arg("wal-push")
        .arg(&wal)
        .assert()
        .success();
    let dest = dir.path().join("existing");
    std::fs::write(&dest, "keep me").unwrap();
    walg()
        .env("WALG_FILE_PREFIX", &store)
        .args(["wal-fetch", "00000002.history"])
        .arg(&dest)
        .assert()
        .code(200);
    assert_eq!(std::fs::read_to_string(&dest).unwrap(), "keep me");
}

#[test]
fn json_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .env("WALG_LOG_FORMAT", "json")
        .args(["wal-fetch", "00000009.history"])
        .arg(dir.path().join("x"))
        .assert()
        .code(74);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for line in stderr.lines() {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
        assert!(
            value["level"].is_string() && value["message"].is_string(),
            "{line}"
        );
    }
    assert!(stderr.contains("not in storage"), "{stderr}");
    // Errors too, with their hint as a field.
    let out = walg()
        .env("WALG_LOG_FORMAT", "json")
        .args(["wal-push", "/x"])
        .assert()
        .code(1);
    let line = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let value: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(value["level"], "ERROR");
    assert!(
        value["hint"]
            .as_str()
            .is_some_and(|h| h.contains("WALG_S3_PREFIX")),
        "{value}"
    );
}

/// The one `ERROR:` line of a failed command, without its timestamp.
fn error_line(stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ERROR: "))
        .collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{stderr}");
    // `ERROR: 2006/01/02 15:04:05.000000 message`
    errors[0]
        .splitn(4, ' ')
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_config_file_value_of_the_wrong_json_type_is_refused_naming_setting_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("walg.json");
    std::fs::write(&config, r#"{"WALG_FILE_PREFIX": 5}"#).unwrap();
    let out = walg()
        .arg("--config")
        .arg(&config)
        .args(["wal-push", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out.stderr),
        format!(
            "invalid WALG_FILE_PREFIX (from config file '{}'): a number where a path (a JSON string) is expected",
            config.display()
        )
    );
    assert!(!dir.path().join("5").exists());

    std::fs::write(&config, r#"{"WALG_UPLOAD_CONCURRENCY": {"n": 4}}"#).unwrap();
    let out = walg()
        .env("WALG_FILE_PREFIX", dir.path())
        .arg("--config")
        .arg(&config)
        .args(["wal-push", "/tmp/x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        error_line(&out.stderr),
        format!(
            "invalid WALG_UPLOAD_CONCURRENCY (from config file '{}'): an object where a whole number is expected",
            config.display()
        )
    );
}

/// True when the tests run as root (who reads every directory).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self")
        .expect("stat /proc/self")
        .uid()
        == 0
}

#[test]
fn an_unreadable_data_directory_is_permission_denied() {
    let storage = tempfile::tempdir().unwrap();
    let pgdata = tempfile::tempdir().unwrap();
    std::fs::create_dir(pgdata.path().join("global")).unwrap();
    std::fs::write(pgdata.path().join("global/pg_control"), b"control").unwrap();
    std::fs::write(pgdata.path().join("PG_VERSION"), b"15\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(pgdata.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let mut cmd = if is_root() {
        // root reads everything: run walg as the PostgreSQL user, who cannot read a directory
        // that root owns with mode 0700.
        let runuser = ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"]
            .into_iter()
            .find(|p| std::path::Path::new(p).is_file())
            .expect("runuser (util-linux), to run walg as postgres");
        let mut cmd = std::process::Command::new(runuser);
        cmd.args(["-u", "postgres", "--"])
            .arg(assert_cmd::cargo::cargo_bin("walg"));
        cmd
    } else {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(pgdata.path(), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::process::Command::new(assert_cmd::cargo::cargo_bin("walg"))
    };
    let out = cmd
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("WALG_FILE_PREFIX", storage.path().join("store"))
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .args(["backup-push"])
        .arg(pgdata.path())
        .output()
        .unwrap();
    if !is_root() {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(pgdata.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        error_line(&out.stderr),
        format!(
            "cannot read '{}': permission denied",
            pgdata.path().display()
        )
    );
}
