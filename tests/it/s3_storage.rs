//! S3-specific behaviour against s3s-fs and fake endpoints on loopback: credentials from a
//! shared credentials file, refusals, deadlines and retries when the server is down or silent,
//! recovery after a restart, multipart abort, a stalled body.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use walg::storage::s3::{S3Credentials, S3Settings, S3Storage};
use walg::storage::{Key, Storage, StorageError, StorageExt, read_error};
use walg::util::secret::Secret;

use crate::common::s3server::{ACCESS_KEY, S3Server, SECRET_KEY};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_RETRIES: u32 = 2;

fn key(s: &str) -> Key {
    Key::new(s).expect("a valid key")
}

/// Small deadlines: 2 s per attempt, 2 retries.
fn impatient(mut settings: S3Settings) -> S3Settings {
    settings.request_timeout = REQUEST_TIMEOUT;
    settings.connect_timeout = Duration::from_secs(1);
    settings.max_retries = MAX_RETRIES;
    settings
}

/// The longest a request may take: every attempt times out, every backoff is the longest
/// (100 ms, 200 ms), plus slack for a busy machine.
fn give_up_bound() -> Duration {
    REQUEST_TIMEOUT * (MAX_RETRIES + 1) + Duration::from_millis(300) + Duration::from_secs(3)
}

async fn storage(settings: &S3Settings) -> S3Storage {
    S3Storage::new(settings)
        .await
        .expect("building the s3 client")
}

fn unavailable<T>(result: Result<T, StorageError>, what: &str) -> StorageError {
    match result {
        Err(e @ StorageError::Unavailable { .. }) => e,
        Err(e) => panic!("{what}: expected Unavailable, got {e:?}"),
        Ok(_) => panic!("{what}: expected Unavailable, got success"),
    }
}

fn refused<T>(result: Result<T, StorageError>, what: &str) -> StorageError {
    match result {
        Err(e @ StorageError::Refused { .. }) => e,
        Err(e) => panic!("{what}: expected Refused, got {e:?}"),
        Ok(_) => panic!("{what}: expected Refused, got success"),
    }
}

async fn read_to_end(storage: &S3Storage, k: &Key) -> Result<Bytes, StorageError> {
    storage.get_bytes(k).await
}

fn no_static_keys(settings: &mut S3Settings, credentials: S3Credentials) {
    settings.credentials = S3Credentials {
        ec2_metadata_disabled: true,
        ..credentials
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_from_a_shared_credentials_file() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp folder");
    // The Kubernetes case: a Secret mounted as a file, pointed at by AWS_SHARED_CREDENTIALS_FILE.
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!("[default]\naws_access_key_id={ACCESS_KEY}\naws_secret_access_key={SECRET_KEY}\n"),
    )
    .expect("writing the credentials file");
    let mut settings = server.settings("creds");
    no_static_keys(
        &mut settings,
        S3Credentials {
            shared_credentials_file: Some(file),
            ..S3Credentials::default()
        },
    );
    let s3 = storage(&settings).await;
    s3.put_bytes(&key("a"), Bytes::from_static(b"from file"))
        .await
        .expect("put");
    assert_eq!(
        &s3.get_bytes(&key("a")).await.expect("get")[..],
        b"from file"
    );

    // The default location below home, and a named profile.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".aws")).expect("creating ~/.aws");
    std::fs::write(
        home.join(".aws/credentials"),
        format!(
            "[default]\naws_access_key_id=nobody\naws_secret_access_key=wrong\n\n\
             [backup]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .expect("writing ~/.aws/credentials");
    no_static_keys(
        &mut settings,
        S3Credentials {
            home: Some(home),
            profile: Some("backup".into()),
            ..S3Credentials::default()
        },
    );
    let s3 = storage(&settings).await;
    assert_eq!(
        &s3.get_bytes(&key("a")).await.expect("get with profile")[..],
        b"from file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credentials_is_a_clear_refusal() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temp folder");
    let mut settings = impatient(server.settings("nocreds"));
    no_static_keys(
        &mut settings,
        S3Credentials {
            home: Some(dir.path().to_path_buf()),
            ..S3Credentials::default()
        },
    );
    let s3 = storage(&settings).await;
    let started = Instant::now();
    let err = refused(
        s3.put_bytes(&key("a"), Bytes::from_static(b"x")).await,
        "put without credentials",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let text = err.to_string();
    assert!(text.contains("no s3 credentials found"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_refused_quickly_and_not_shown() {
    let server = S3Server::start();
    let wrong = "Wr0ngSecretThatMustNeverBePrinted";
    let mut settings = impatient(server.settings("wrong"));
    settings.credentials.secret_access_key = Some(Secret::new(wrong));
    let s3 = storage(&settings).await;
    let started = Instant::now();
    let errors = [
        refused(
            s3.put_bytes(&key("a"), Bytes::from_static(b"x")).await,
            "put",
        ),
        refused(read_to_end(&s3, &key("a")).await, "get"),
        refused(s3.head(&key("a")).await, "head"),
        refused(s3.list(&key("")).await, "list"),
        refused(s3.delete(&[key("a")]).await, "delete"),
    ];
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    for err in errors {
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains(wrong) && !text.contains(SECRET_KEY),
            "secret in error: {text}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }
    assert!(!format!("{settings:?}").contains(wrong));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_is_unavailable_then_recovers() {
    let mut server = S3Server::start();
    let settings = impatient(server.settings("restart"));
    let s3 = storage(&settings).await;
    s3.put_bytes(&key("before"), Bytes::from_static(b"old"))
        .await
        .expect("put");

    server.stop();
    let started = Instant::now();
    let err = unavailable(
        s3.put_bytes(&key("during"), Bytes::from_static(b"x")).await,
        "put",
    );
    assert!(
        started.elapsed() < give_up_bound(),
        "put took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("3 attempts"), "{err}");
    let started = Instant::now();
    unavailable(read_to_end(&s3, &key("before")).await, "get");
    unavailable(s3.head(&key("before")).await, "head");
    unavailable(s3.list(&key("")).await, "list");
    assert!(
        started.elapsed() < give_up_bound() * 3,
        "took {:?}",
        started.elapsed()
    );

    server.restart();
    s3.put_bytes(&key("after"), Bytes::from_static(b"new"))
        .await
        .expect("put after restart");
    assert_eq!(
        &s3.get_bytes(&key("before")).await.expect("get")[..],
        b"old"
    );
    assert_eq!(&s3.get_bytes(&key("after")).await.expect("get")[..], b"new");
}

/// Accepts connections and never answers.
fn silent_endpoint() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.extend(stream.ok());
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_does_not_hang() {
    let server = S3Server::start();
    let mut settings = impatient(server.settings("silent"));
    settings.endpoint = Some(silent_endpoint());
    let s3 = storage(&settings).await;
    let started = Instant::now();
    unavailable(
        s3.put_bytes(&key("a"), Bytes::from_static(b"x")).await,
        "put",
    );
    assert!(
        started.elapsed() < give_up_bound(),
        "put took {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() >= REQUEST_TIMEOUT,
        "gave up too soon: {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let err = unavailable(read_to_end(&s3, &key("a")).await, "get");
    assert!(
        started.elapsed() < give_up_bound(),
        "get took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("no answer within 2.0s"), "{err}");
}

/// Answers any request with headers promising 100 bytes, sends 10, then stalls.
fn stalling_endpoint() -> String {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/octet-stream\r\n\
                        Last-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n0123456789";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.flush();
            held.push(stream);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_fails_instead_of_hanging() {
    let server = S3Server::start();
    let mut settings = impatient(server.settings("stall"));
    settings.endpoint = Some(stalling_endpoint());
    let s3 = storage(&settings).await;
    let mut body = s3.get(&key("a")).await.expect("the headers arrive");
    let started = Instant::now();
    let mut out = Vec::new();
    let err = body
        .read_to_end(&mut out)
        .await
        .expect_err("the body must fail");
    let err = read_error("a", err);
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        started.elapsed() < REQUEST_TIMEOUT + Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains("no data received"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_root_works_as_prefix() {
    let server = S3Server::start();
    let s3 = storage(&server.settings("")).await;
    s3.put_bytes(&key("wal_005/a"), Bytes::from_static(b"1"))
        .await
        .expect("put");
    s3.put_bytes(&key("top"), Bytes::from_static(b"2"))
        .await
        .expect("put");
    let mut keys: Vec<String> = s3
        .list(&key(""))
        .await
        .expect("list")
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["top", "wal_005/a"]);
    assert!(
        server
            .data_dir()
            .join(server.bucket())
            .join("wal_005/a")
            .is_file()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_live_below_the_root_in_the_bucket() {
    let server = S3Server::start();
    let s3 = storage(&server.settings("/backups/pg1/")).await;
    s3.put_bytes(&key("basebackups_005/x"), Bytes::from_static(b"1"))
        .await
        .expect("put");
    let path = server
        .data_dir()
        .join(server.bucket())
        .join("backups/pg1/basebackups_005/x");
    assert!(path.is_file(), "{} is missing", path.display());
    assert_eq!(s3.to_string(), "s3://walg-test/backups/pg1");
}
