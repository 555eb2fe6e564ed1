//! The storage contract (`walg::storage::Storage`), checked the same way against every
//! backend: in memory, a local folder (a temp dir), and S3 (an s3s-fs server on loopback,
//! with 5 MiB parts and delete batches of 3, so that multipart and batching are exercised).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};
use walg::storage::fs::{FsSettings, FsStorage, is_temp_name};
use walg::storage::memory::MemoryStorage;
use walg::storage::s3::S3Storage;
use walg::storage::{BoxReader, Key, Storage, StorageError, StorageExt};

use crate::common::s3server::S3Server;

const MIB: usize = 1024 * 1024;

/// A backend under test, with whatever keeps it alive.
struct Backend {
    storage: Arc<dyn Storage>,
    place: Place,
}

enum Place {
    Memory,
    Folder(tempfile::TempDir),
    S3(S3Server),
}

impl Backend {
    async fn memory() -> Backend {
        Backend {
            storage: Arc::new(MemoryStorage::new()),
            place: Place::Memory,
        }
    }

    async fn fs() -> Backend {
        let dir = tempfile::tempdir().expect("creating a temp folder");
        std::fs::create_dir(dir.path().join("storage")).expect("creating the storage folder");
        let storage = FsStorage::new(FsSettings {
            root: dir.path().join("storage"),
        });
        Backend {
            storage: Arc::new(storage),
            place: Place::Folder(dir),
        }
    }

    async fn s3() -> Backend {
        let server = S3Server::start();
        let mut settings = server.settings("conformance/root");
        settings.max_part_size = 5 * MIB;
        settings.delete_batch_size = 3;
        let storage = S3Storage::new(&settings)
            .await
            .expect("building the s3 client");
        Backend {
            storage: Arc::new(storage),
            place: Place::S3(server),
        }
    }

    /// Nothing the backend uses internally is left behind: no temp files in the folder, no
    /// unfinished multipart uploads on the server.
    fn assert_clean(&self) {
        match &self.place {
            Place::Memory => {}
            Place::Folder(dir) => {
                for entry in walkdir::WalkDir::new(dir.path()) {
                    let entry = entry.expect("walking the storage folder");
                    let name = entry.file_name().to_string_lossy();
                    assert!(
                        !is_temp_name(&name),
                        "temp file left behind: {}",
                        entry.path().display()
                    );
                }
            }
            Place::S3(server) => {
                let data = server.data_dir();
                for entry in std::fs::read_dir(&data).expect("reading the server folder") {
                    let name = entry.expect("reading the server folder").file_name();
                    let name = name.to_string_lossy();
                    assert!(
                        !name.starts_with(".upload") && !name.starts_with(".tmp."),
                        "unfinished upload left on the server: {name}"
                    );
                }
            }
        }
    }
}

fn key(s: &str) -> Key {
    Key::new(s).expect("a valid key")
}

/// Deterministic bytes that differ per `seed` (xorshift).
fn data(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn reader(bytes: Bytes) -> BoxReader {
    Box::new(std::io::Cursor::new(bytes))
}

/// Yields `good` bytes of data, then fails.
struct FailingReader {
    data: Bytes,
    pos: usize,
}

impl FailingReader {
    fn boxed(good: usize) -> BoxReader {
        Box::new(FailingReader {
            data: data(good, 99),
            pos: 0,
        })
    }
}

impl AsyncRead for FailingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos >= this.data.len() {
            return Poll::Ready(Err(io::Error::other("the disk caught fire")));
        }
        let n = buf
            .remaining()
            .min(this.data.len() - this.pos)
            .min(64 * 1024);
        buf.put_slice(&this.data[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

async fn get_result(storage: &dyn Storage, k: &Key) -> Result<Bytes, StorageError> {
    storage.get_bytes(k).await
}

fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StorageError>, what: &str) {
    match result {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

async fn sorted_keys(storage: &dyn Storage, folder: &str) -> Vec<String> {
    let mut keys: Vec<String> = storage
        .list(&key(folder))
        .await
        .expect("listing")
        .into_iter()
        .map(|m| m.key.to_string())
        .collect();
    keys.sort();
    keys
}

// ---- the contract ------------------------------------------------------------------------

async fn round_trip(storage: &dyn Storage) {
    let sizes = [0, 1, 1000, 5 * MIB, 12 * MIB + 7];
    for (i, size) in sizes.into_iter().enumerate() {
        let k = key(&format!("round/trip-{size}"));
        let body = data(size, i as u64);
        // Half of the bodies come without a size hint.
        let hint = (i % 2 == 0).then_some(size as u64);
        storage
            .put(&k, reader(body.clone()), hint)
            .await
            .expect("put");
        let back = storage.get_bytes(&k).await.expect("get");
        assert!(
            back == body,
            "{size} bytes came back as {} different bytes",
            back.len()
        );
        let meta = storage.head(&k).await.expect("head");
        assert_eq!(meta.key, k);
        assert_eq!(meta.size, size as u64);
        let age = jiff::Timestamp::now().duration_since(meta.last_modified);
        assert!(
            age.as_secs().abs() < 300,
            "last_modified {} is far from now",
            meta.last_modified
        );
    }
}

async fn overwrite_replaces(storage: &dyn Storage) {
    let k = key("over/write");
    storage
        .put(&k, reader(data(12 * MIB, 1)), None)
        .await
        .expect("first put");
    let second = data(10, 2);
    storage
        .put_bytes(&k, second.clone())
        .await
        .expect("second put");
    assert_eq!(storage.get_bytes(&k).await.expect("get"), second);
    assert_eq!(storage.head(&k).await.expect("head").size, 10);
    assert_eq!(sorted_keys(storage, "over").await, ["over/write"]);
}

async fn missing_is_not_found(storage: &dyn Storage) {
    storage
        .put_bytes(&key("present/x"), data(3, 3))
        .await
        .expect("put");
    for missing in ["absent", "present/y", "present/x/z", "no/such/folder/file"] {
        let k = key(missing);
        assert_not_found(get_result(storage, &k).await, &format!("get '{missing}'"));
        assert_not_found(storage.head(&k).await, &format!("head '{missing}'"));
        assert!(!storage.exists(&k).await.expect("exists"));
    }
}

/// A folder is not an object. Not run against s3s-fs: it keeps objects as files and answers
/// 500 for a key that names one of its folders (S3 itself has no folders).
#[tokio::test]
async fn a_folder_is_not_an_object() {
    for backend in [Backend::memory().await, Backend::fs().await] {
        let storage = &*backend.storage;
        storage
            .put_bytes(&key("present/x"), data(3, 3))
            .await
            .expect("put");
        assert_not_found(storage.head(&key("present")).await, "head of a folder");
        assert_not_found(
            get_result(storage, &key("present")).await,
            "get of a folder",
        );
    }
}

async fn list_is_recursive_and_relative(storage: &dyn Storage) {
    for (name, size) in [("a/b/1", 1), ("a/b/c/2", 2), ("a/bc/3", 3), ("x", 4)] {
        storage
            .put_bytes(&key(name), data(size, 4))
            .await
            .expect("put");
    }
    assert_eq!(sorted_keys(storage, "a/b").await, ["a/b/1", "a/b/c/2"]);
    assert_eq!(
        sorted_keys(storage, "a").await,
        ["a/b/1", "a/b/c/2", "a/bc/3"]
    );
    assert_eq!(
        sorted_keys(storage, "").await,
        ["a/b/1", "a/b/c/2", "a/bc/3", "x"]
    );
    assert!(sorted_keys(storage, "missing").await.is_empty());
    assert!(
        sorted_keys(storage, "a/b/1").await.is_empty(),
        "an object is not a folder"
    );
    let listed = storage.list(&key("a/b/c")).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, 2);
}

async fn delete_is_idempotent_and_batched(storage: &dyn Storage) {
    let keys: Vec<Key> = (0..7).map(|i| key(&format!("del/k{i}"))).collect();
    for k in &keys {
        storage.put_bytes(k, data(5, 5)).await.expect("put");
    }
    storage
        .put_bytes(&key("kept"), data(5, 6))
        .await
        .expect("put");
    let mut doomed = keys.clone();
    doomed.push(key("del/never-existed"));
    doomed.push(key("nowhere/at/all"));
    storage.delete(&doomed).await.expect("delete");
    assert!(sorted_keys(storage, "del").await.is_empty());
    for k in &keys {
        assert_not_found(storage.head(k).await, "head after delete");
    }
    storage.delete(&doomed).await.expect("deleting again");
    storage.delete(&[]).await.expect("deleting nothing");
    assert_eq!(sorted_keys(storage, "").await, ["kept"]);
}

async fn failing_body_leaves_nothing(storage: &dyn Storage) {
    // Within the first part, and after two S3 parts (the multipart path).
    for good in [1000, 11 * MIB] {
        let k = key(&format!("fail/{good}"));
        let err = storage
            .put(&k, FailingReader::boxed(good), None)
            .await
            .expect_err("put must fail");
        assert!(matches!(err, StorageError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("caught fire"), "{err}");
        assert_not_found(storage.head(&k).await, "head after a failed put");
    }
    assert!(sorted_keys(storage, "").await.is_empty());
    // A failed put keeps the old object.
    let k = key("fail/kept");
    storage.put_bytes(&k, data(7, 7)).await.expect("put");
    storage
        .put(&k, FailingReader::boxed(100), Some(1000))
        .await
        .expect_err("put must fail");
    assert_eq!(storage.get_bytes(&k).await.expect("get"), data(7, 7));
}

/// Runs every contract check against one backend, one test each.
macro_rules! suite {
    ($backend:ident: $($check:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let backend = super::Backend::$backend().await;
                    super::$check(&*backend.storage).await;
                    backend.assert_clean();
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($check:ident),* $(,)?) => {
        suite!(memory: $($check),*);
        suite!(fs: $($check),*);
        suite!(s3: $($check),*);
    };
}

all_backends!(
    round_trip,
    overwrite_replaces,
    missing_is_not_found,
    list_is_recursive_and_relative,
    delete_is_idempotent_and_batched,
    failing_body_leaves_nothing,
);

/// "A missing folder is an empty list" holds below the root; a local storage folder that does
/// not exist (a typo, an unmounted volume) is an error for every call, and is never created.
#[tokio::test]
async fn a_missing_local_root_folder_is_an_error_not_an_empty_storage() {
    let dir = tempfile::tempdir().expect("creating a temp folder");
    let root = dir.path().join("unmounted");
    let storage = FsStorage::new(FsSettings { root: root.clone() });
    let missing = |result: Result<(), StorageError>, what: &str| {
        assert!(
            matches!(result, Err(StorageError::LocationMissing { .. })),
            "{what}: {result:?}"
        );
    };
    missing(
        storage.list(&Key::root()).await.map(drop),
        "list of the root",
    );
    missing(storage.list(&key("wal_005")).await.map(drop), "list below");
    missing(get_result(&storage, &key("a/b")).await.map(drop), "get");
    missing(storage.head(&key("a")).await.map(drop), "head");
    missing(storage.put_bytes(&key("a/b"), data(3, 1)).await, "put");
    assert!(!root.exists(), "the root folder was created");
    std::fs::create_dir(&root).expect("mkdir");
    assert!(
        storage
            .list(&key("wal_005"))
            .await
            .expect("list")
            .is_empty()
    );
}
