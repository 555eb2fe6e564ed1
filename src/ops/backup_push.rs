//! `backup-push [PGDATA]`: a full base backup of a running cluster in WAL-G's layout.
//!
//! Order (field notes rule 6): check archiving → `pg_backup_start` on one session → walk
//! PGDATA → data tar parts (read, tar, compress and upload at once, bounded) → `pg_control.tar`
//! → `pg_backup_stop` on the same session → `backup_label.tar` from its result → wait (bounded)
//! until the stop segment is archived → `files_metadata.json`, `metadata.json` → the sentinel,
//! last. On any failure before the sentinel the session is closed, which aborts the backup on
//! the server, the objects of this attempt are removed (best effort) and no sentinel exists.
//!
//! WAL-G compat: internal/databases/postgres/backup_push_handler.go, bundle.go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::progress::Progress;
use super::{Context, HintedError};
use crate::archive::{self, Entry, TarWriter, Walk};
use crate::compression::{self, CompressionSettings};
use crate::layout::backup as keys;
use crate::layout::documents::{
    BackupFileDescription, DATE_FMT, ExtendedMetadata, FilesMetadata, SENTINEL_VERSION, Sentinel,
    Tablespace, TablespaceSpec,
};
use crate::layout::gotime::{GoTime, ceil_to_micros};
use crate::layout::{BackupName, RunId};
use crate::pg::{BackupInProgress, ConnectSettings, Lsn, PgConn, datadir};
use crate::storage::{Key, StorageExt};
use crate::util::pipe::PipeWriter;

/// What the caller asks for.
#[derive(Debug, Clone)]
pub struct BackupPushOptions {
    /// The data directory given on the command line; `None`: the server's.
    pub pgdata: Option<PathBuf>,
    pub connect: ConnectSettings,
    /// `--permanent`.
    pub permanent: bool,
    /// `--add-user-data` (else `WALG_SENTINEL_USER_DATA`).
    pub user_data: Option<serde_json::Value>,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupPushReport {
    pub name: String,
    pub parts: usize,
    pub uncompressed_size: u64,
    pub compressed_size: u64,
    pub start_lsn: u64,
    pub finish_lsn: u64,
}

/// Runs `backup-push`.
pub async fn run(
    ctx: &Context,
    opts: BackupPushOptions,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<BackupPushReport> {
    let server = connect_and_check(ctx, &opts).await?;
    let pgdata = server.pgdata;

    // step: start the backup on this session and name it.
    let start_time = GoTime::utc(ceil_to_micros(jiff::Timestamp::now()));
    let label = backup_label();
    // The in-progress marker tells `delete` and other backup-pushes that this backup is being
    // written, until it is complete.
    let (session, name, marker) = claim_name(ctx, server.conn, &label, server.segment_size).await?;
    let start = session.start().clone();
    tracing::info!(
        "starting backup '{name}' of '{}' at LSN {}",
        pgdata.display(),
        Lsn(start.lsn)
    );

    let attempt = Attempt {
        ctx,
        name: name.clone(),
        marker: marker.key.clone(),
        compression: ctx.settings.compression,
        progress: Arc::clone(&progress),
        compressed: Arc::new(AtomicU64::new(0)),
    };
    let result = attempt.upload_all(session, &pgdata).await;
    let (conn, stop, uploaded) = match result {
        Ok(done) => done,
        Err(e) => {
            progress.end();
            attempt.remove_objects().await;
            return Err(e.context(format!("backup '{name}' failed; no backup was recorded")));
        }
    };
    progress.end();

    attempt.wait_for_stop_segment(&conn, &stop).await?;

    // step: metadata, then the sentinel last.
    let summary = Summary {
        start_time,
        finish_time: GoTime::utc(ceil_to_micros(jiff::Timestamp::now())),
        start_lsn: start.lsn,
        finish_lsn: stop.stop_lsn,
        uncompressed: uploaded.uncompressed,
        compressed: attempt.compressed.load(Ordering::Relaxed),
        catalog_size: uploaded.catalog_size,
        hostname: hostname(),
        data_dir: pgdata.display().to_string(),
        pg_version: server.pg_version,
        system_identifier: server.system_identifier,
        permanent: opts.permanent,
        user_data: opts
            .user_data
            .clone()
            .or_else(|| ctx.settings.backup.user_data.clone()),
        spec: uploaded.spec.clone(),
    };
    if let Err(e) = write_documents(ctx, &name, uploaded.files_metadata, &summary).await {
        attempt.remove_objects().await;
        return Err(e.context(format!("backup '{name}' failed; no backup was recorded")));
    }
    marker.remove().await;
    tracing::info!("wrote backup with name {name} to storage {}", ctx.storage);
    Ok(BackupPushReport {
        name: name.to_string(),
        parts: uploaded.parts,
        uncompressed_size: summary.uncompressed,
        compressed_size: summary.compressed,
        start_lsn: start.lsn,
        finish_lsn: stop.stop_lsn,
    })
}

/// The server a backup is taken of, checked.
struct Server {
    conn: PgConn,
    pgdata: PathBuf,
    segment_size: u64,
    system_identifier: u64,
    pg_version: u32,
}

/// Checks the data directory given, connects, and checks the server's: its data directory,
/// its WAL segment size and that it archives WAL.
async fn connect_and_check(ctx: &Context, opts: &BackupPushOptions) -> anyhow::Result<Server> {
    let given = match &opts.pgdata {
        Some(dir) => {
            let dir = datadir::canonical(dir)?;
            datadir::check(&dir)?;
            Some(dir)
        }
        None => None,
    };
    let conn = PgConn::connect(&opts.connect).await?;
    let server_dir = conn.data_directory().await?;
    let pgdata = match given {
        Some(dir) => {
            if dir != server_dir {
                return Err(HintedError::new(
                    format!(
                        "'{}' is not the data directory of the server walg connected to ('{}')",
                        dir.display(),
                        server_dir.display()
                    ),
                    "check PGHOST/PGPORT, or give the server's data directory",
                )
                .into());
            }
            dir
        }
        None => {
            datadir::check(&server_dir)?;
            server_dir
        }
    };
    let segment_size = conn.wal_segment_size().await?;
    if segment_size != ctx.settings.wal.segment_size {
        return Err(HintedError::new(
            format!(
                "the server's WAL segments are {} MiB, walg is set for {} MiB",
                segment_size / (1024 * 1024),
                ctx.settings.wal.segment_size / (1024 * 1024)
            ),
            format!("set WALG_PG_WAL_SIZE={}", segment_size / (1024 * 1024)),
        )
        .into());
    }
    let system_identifier = conn.system_identifier().await?;
    let pg_version = conn.server_version_num();
    conn.check_archiving().await?;
    Ok(Server {
        conn,
        pgdata,
        segment_size,
        system_identifier,
        pg_version,
    })
}

/// What the metadata documents and the sentinel record of a backup whose data is uploaded.
struct Summary {
    start_time: GoTime,
    finish_time: GoTime,
    start_lsn: u64,
    finish_lsn: u64,
    uncompressed: u64,
    compressed: u64,
    catalog_size: u64,
    hostname: String,
    data_dir: String,
    pg_version: u32,
    system_identifier: u64,
    permanent: bool,
    user_data: Option<serde_json::Value>,
    spec: Option<TablespaceSpec>,
}

impl Summary {
    fn metadata(&self) -> ExtendedMetadata {
        ExtendedMetadata {
            start_time: self.start_time,
            finish_time: self.finish_time,
            date_fmt: DATE_FMT.to_string(),
            hostname: self.hostname.clone(),
            data_dir: self.data_dir.clone(),
            pg_version: self.pg_version,
            start_lsn: self.start_lsn,
            finish_lsn: self.finish_lsn,
            is_permanent: self.permanent,
            system_identifier: Some(self.system_identifier),
            uncompressed_size: i64::try_from(self.uncompressed).unwrap_or(i64::MAX),
            compressed_size: i64::try_from(self.compressed).unwrap_or(i64::MAX),
            user_data: self.user_data.clone(),
        }
    }

    fn sentinel(&self) -> Sentinel {
        Sentinel {
            lsn: Some(self.start_lsn),
            pg_version: self.pg_version,
            finish_lsn: Some(self.finish_lsn),
            system_identifier: Some(self.system_identifier),
            uncompressed_size: i64::try_from(self.uncompressed).unwrap_or(i64::MAX),
            compressed_size: i64::try_from(self.compressed).unwrap_or(i64::MAX),
            data_catalog_size: i64::try_from(self.catalog_size).unwrap_or(i64::MAX),
            spec: self.spec.clone(),
            user_data: self.user_data.clone(),
            start_time: self.start_time,
            finish_time: self.finish_time,
            hostname: self.hostname.clone(),
            data_dir: self.data_dir.clone(),
            is_permanent: self.permanent,
            version: SENTINEL_VERSION,
            date_fmt: DATE_FMT.to_string(),
            ..Sentinel::default()
        }
    }
}

/// Writes `files_metadata.json`, `metadata.json` and, last, the sentinel.
async fn write_documents(
    ctx: &Context,
    name: &BackupName,
    files: FilesMetadata,
    summary: &Summary,
) -> anyhow::Result<()> {
    put_json(ctx, &keys::files_metadata_key(name), &files.to_json()?).await?;
    let metadata = summary.metadata();
    put_json(ctx, &keys::metadata_key(name), &metadata.to_json()?).await?;
    let sentinel = summary.sentinel();
    put_json(ctx, &keys::sentinel_key(name), &sentinel.to_json()?).await
}

/// The label `pg_backup_start` is given: the program and the local time.
fn backup_label() -> String {
    format!(
        "walg backup {}",
        jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S %Z")
    )
}

/// How many names a backup-push tries before it gives up.
const NAME_ATTEMPTS: u32 = 5;

/// Starts the backup and takes its name for this run alone.
///
/// Two backups starting in one WAL segment get one name. So, before any part is written,
/// this run writes its own in-progress marker (a per-run key) into the backup's folder, then
/// lists the folder and looks for the sentinel. Anything there besides its own marker (another
/// run's marker, fresh or stale, parts of a run that died, a complete backup) means the name
/// is not free: the run removes its marker, stops the backup, switches to a new WAL segment,
/// waits a random moment and starts again, at most [`NAME_ATTEMPTS`] times. Because each run
/// lists only after its own marker is stored, of two runs racing for one name at least the
/// later one sees the other, so two runs never both keep a name (both may give it up; the
/// random wait separates their next attempts). A standby cannot switch WAL segments: there
/// the run fails instead. A marker left by a killed run therefore never blocks a primary: it
/// only costs a new name.
async fn claim_name(
    ctx: &Context,
    conn: PgConn,
    label: &str,
    segment_size: u64,
) -> anyhow::Result<(BackupInProgress, BackupName, InProgress)> {
    let run = run_id();
    let mut conn = conn;
    let mut attempt = 1;
    loop {
        let session = conn.start_backup(label).await?;
        let start = session.start().clone();
        let name: BackupName = keys::backup_name(start.timeline, start.lsn, segment_size)
            .ok_or_else(|| anyhow::anyhow!("cannot name a backup starting at {:#X}", start.lsn))?
            .into();
        let marker = InProgress::start(ctx, &name, &run).await?;
        let taken = match name_taken(ctx, &name, &marker.key).await {
            Ok(taken) => taken,
            Err(e) => {
                marker.remove().await;
                return Err(e);
            }
        };
        let Some(why) = taken else {
            return Ok((session, name, marker));
        };
        marker.remove().await;
        if start.in_recovery {
            bail!(
                "backup '{name}' {why}, and a standby cannot switch WAL segments; try again after more WAL"
            );
        }
        if attempt >= NAME_ATTEMPTS {
            bail!(
                "backup '{name}' {why}; no free backup name after {NAME_ATTEMPTS} WAL segment switches"
            );
        }
        tracing::info!("backup '{name}' {why}; switching to a new WAL segment");
        let (stopped, _) = session.stop().await?;
        stopped.switch_wal().await?;
        let pause = rand::random_range(50..=500) * u64::from(attempt);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        conn = stopped;
        attempt += 1;
    }
}

/// Why `name` is not free for the run whose marker is `own`, or `None` when it is.
async fn name_taken(ctx: &Context, name: &BackupName, own: &Key) -> anyhow::Result<Option<String>> {
    let folder = keys::backup_folder(name);
    let objects = ctx
        .storage
        .list(&folder)
        .await
        .with_context(|| format!("listing '{folder}'"))?;
    let foreign: Vec<&Key> = objects
        .iter()
        .map(|o| &o.key)
        .filter(|k| k.is_under(&folder) && *k != own)
        .collect();
    if foreign
        .iter()
        .any(|k| keys::is_in_progress_marker(k.file_name()))
    {
        return Ok(Some("is being written by another backup-push".to_string()));
    }
    if ctx.storage.exists(&keys::sentinel_key(name)).await? {
        return Ok(Some("already exists".to_string()));
    }
    if !foreign.is_empty() {
        return Ok(Some(format!(
            "has {} objects of an incomplete backup in '{folder}'",
            foreign.len()
        )));
    }
    Ok(None)
}

/// A run id, unique among concurrent runs: random, in hexadecimal.
fn run_id() -> RunId {
    RunId::from_number(rand::random::<u64>())
}

/// The in-progress marker of a running backup, refreshed every [`MARKER_REFRESH`] by a task.
struct InProgress {
    key: Key,
    refresher: tokio::task::JoinHandle<()>,
    storage: Arc<dyn crate::storage::Storage>,
}

/// How often a running backup-push refreshes its marker.
pub const MARKER_REFRESH: Duration = Duration::from_secs(60);

impl InProgress {
    /// Writes the marker of run `run` for backup `name` and keeps it fresh.
    async fn start(ctx: &Context, name: &BackupName, run: &RunId) -> anyhow::Result<InProgress> {
        let key = keys::in_progress_marker_key(name, run);
        let body = serde_json::json!({
            "backup_name": name.as_str(),
            "run": run.as_str(),
            "hostname": hostname(),
            "pid": std::process::id(),
            "started": jiff::Timestamp::now().to_string(),
        })
        .to_string();
        let body = Bytes::from(body);
        ctx.storage
            .put_bytes(&key, body.clone())
            .await
            .with_context(|| format!("uploading '{key}'"))?;
        let storage = Arc::clone(&ctx.storage);
        let refresh_key = key.clone();
        let refresher = tokio::spawn(async move {
            loop {
                tokio::time::sleep(MARKER_REFRESH).await;
                if let Err(e) = storage.put_bytes(&refresh_key, body.clone()).await {
                    tracing::warn!("could not refresh '{refresh_key}': {e}");
                }
            }
        });
        Ok(InProgress {
            key,
            refresher,
            storage: Arc::clone(&ctx.storage),
        })
    }

    /// The backup is complete or given up: stop refreshing and remove the marker (a leftover
    /// is harmless: it goes stale, `delete` ignores stale markers and `backup-push` takes
    /// another name).
    async fn remove(self) {
        self.refresher.abort();
        if let Err(e) = self.storage.delete(std::slice::from_ref(&self.key)).await {
            tracing::warn!("could not remove '{}': {e}", self.key);
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

/// What the uploads produced, for the metadata.
struct Uploaded {
    parts: usize,
    uncompressed: u64,
    catalog_size: u64,
    files_metadata: FilesMetadata,
    spec: Option<TablespaceSpec>,
}

/// One backup attempt: where its objects go and what they cost.
struct Attempt<'a> {
    ctx: &'a Context,
    name: BackupName,
    /// This run's in-progress marker.
    marker: Key,
    compression: CompressionSettings,
    progress: Arc<dyn Progress>,
    compressed: Arc<AtomicU64>,
}

/// One tar part to build: its object file name and members.
struct PartPlan {
    file_name: String,
    entries: Vec<Entry>,
}

/// What building one part wrote.
struct PartDone {
    file_name: String,
    members: Vec<Entry>,
    content: u64,
}

impl Attempt<'_> {
    fn ext(&self) -> &'static str {
        self.compression.method.extension()
    }

    /// Uploads the data parts and `pg_control.tar`, stops the backup, uploads
    /// `backup_label.tar`. The session is consumed: on error it is dropped, which aborts the
    /// backup on the server.
    async fn upload_all(
        &self,
        session: BackupInProgress,
        pgdata: &Path,
    ) -> anyhow::Result<(PgConn, crate::pg::BackupStop, Uploaded)> {
        let (walk, total) = self.walk(pgdata).await?;

        // step: data parts, several at once (WALG_UPLOAD_DISK_CONCURRENCY), each streaming.
        let plans = self.data_part_plans(walk.entries.clone());
        let part_count = plans.len();
        let done = self.upload_parts(plans).await?;

        // step: pg_control, after every data part.
        let control = walk
            .pg_control
            .clone()
            .ok_or_else(|| anyhow::anyhow!("global/pg_control vanished during the backup"))?;
        let control_plan = PartPlan {
            file_name: keys::pg_control_tar_file_name(self.ext()),
            entries: vec![control],
        };
        let control_done = self.upload_parts(vec![control_plan]).await?;

        // step: stop on the same session; the label files come from its result.
        let (conn, stop) = session.stop().await?;
        let label_name = keys::backup_label_tar_file_name(self.ext());
        let label_file = Bytes::from(stop.label_file.clone().into_bytes());
        let spcmap_file = Bytes::from(stop.spcmap_file.clone().into_bytes());
        self.upload_tar(&label_name, move |tar| {
            tar.append_label("backup_label", &label_file)?;
            tar.append_label("tablespace_map", &spcmap_file)
        })
        .await?;

        // step: files_metadata.json: every member of the data tars.
        let (mut files_metadata, data_content) = files_metadata(done);
        let uncompressed = data_content + control_done.iter().map(|p| p.content).sum::<u64>();
        files_metadata.tar_file_sets.insert(
            label_name,
            vec!["backup_label".to_string(), "tablespace_map".to_string()],
        );

        let spec = tablespace_spec(&walk, pgdata);
        Ok((
            conn,
            stop,
            Uploaded {
                parts: part_count,
                uncompressed,
                catalog_size: total,
                files_metadata,
                spec,
            },
        ))
    }

    /// Walks the data directory and starts the progress at the size of what it found.
    async fn walk(&self, pgdata: &Path) -> anyhow::Result<(Walk, u64)> {
        let root = pgdata.to_path_buf();
        let walk: Walk = tokio::task::spawn_blocking(move || archive::walk(&root))
            .await
            .context("walking the data directory")?
            .with_context(|| format!("walking '{}'", pgdata.display()))?;
        let total: u64 = walk.entries.iter().map(|e| e.size).sum::<u64>()
            + walk.pg_control.as_ref().map_or(0, |e| e.size);
        self.progress
            .begin(&format!("backup-push {}", self.name), Some(total));
        Ok((walk, total))
    }

    /// The data parts: the entries partitioned at `WALG_TAR_SIZE_THRESHOLD`, numbered from 1.
    fn data_part_plans(&self, entries: Vec<Entry>) -> Vec<PartPlan> {
        let parts = archive::partition(entries, self.ctx.settings.backup.tar_size_threshold);
        parts
            .into_iter()
            .enumerate()
            .map(|(i, entries)| PartPlan {
                file_name: keys::tar_part_file_name(
                    u32::try_from(i + 1).unwrap_or(u32::MAX),
                    self.ext(),
                ),
                entries,
            })
            .collect()
    }

    /// The WAL from start to stop must be archived before the backup may exist: waits
    /// (bounded) for the stop segment; on failure removes this attempt's objects.
    async fn wait_for_stop_segment(
        &self,
        conn: &PgConn,
        stop: &crate::pg::BackupStop,
    ) -> anyhow::Result<()> {
        let wait = self.ctx.settings.backup.archive_wait;
        if let Some(segment) = &stop.stop_wal_file {
            tracing::info!("waiting for WAL segment '{segment}' to be archived");
            if let Err(e) = conn.wait_archived(segment, wait, |_, _| {}).await {
                self.remove_objects().await;
                return Err(anyhow::Error::new(e).context(format!(
                    "backup '{}' is not usable without its WAL; no backup was recorded",
                    self.name
                )));
            }
        }
        Ok(())
    }

    /// Builds and uploads parts, at most `WALG_UPLOAD_DISK_CONCURRENCY` at once.
    async fn upload_parts(&self, plans: Vec<PartPlan>) -> anyhow::Result<Vec<PartDone>> {
        let limit = self.ctx.settings.backup.upload_disk_concurrency.max(1);
        let mut pending = plans.into_iter();
        let mut running = JoinSet::new();
        let mut done = Vec::new();
        loop {
            while running.len() < limit {
                let Some(plan) = pending.next() else { break };
                let job = self.part_job(plan)?;
                running.spawn(job);
            }
            match running.join_next().await {
                None => break,
                Some(joined) => {
                    let part = joined.context("tar part task failed")??;
                    done.push(part);
                }
            }
        }
        Ok(done)
    }

    /// A task that streams one data part: read files → tar → compress → upload.
    fn part_job(
        &self,
        plan: PartPlan,
    ) -> anyhow::Result<impl Future<Output = anyhow::Result<PartDone>> + Send + 'static> {
        let key = keys::tar_partitions_folder(&self.name).join(&plan.file_name)?;
        let storage = Arc::clone(&self.ctx.storage);
        let compression = self.compression;
        let counter = Arc::clone(&self.compressed);
        let progress = Arc::clone(&self.progress);
        Ok(async move {
            let file_name = plan.file_name.clone();
            let (members, content) = super::upload::stream_to_storage(
                &storage,
                &key,
                "building the tar part",
                move |writer| {
                    let counted = Counting {
                        inner: writer,
                        count: counter,
                    };
                    let encoder = compression::encoder(compression, counted)?;
                    let mut tar = TarWriter::new(encoder);
                    let mut members = Vec::with_capacity(plan.entries.len());
                    let mut content = 0;
                    for entry in plan.entries {
                        if let Some(bytes) = tar.append_entry(&entry)? {
                            content += bytes;
                            progress.add(bytes);
                            members.push(entry);
                        }
                    }
                    let encoder = tar.finish()?;
                    let counted = encoder.finish()?;
                    counted.inner.finish()?;
                    Ok((members, content))
                },
            )
            .await?;
            Ok(PartDone {
                file_name,
                members,
                content,
            })
        })
    }

    /// Uploads a small tar built by `build`.
    async fn upload_tar(
        &self,
        file_name: &str,
        build: impl FnOnce(&mut TarWriter<compression::Encoder<Vec<u8>>>) -> std::io::Result<()>
        + Send
        + 'static,
    ) -> anyhow::Result<()> {
        let compression = self.compression;
        let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
            let mut tar = TarWriter::new(compression::encoder(compression, Vec::new())?);
            build(&mut tar)?;
            tar.finish()?.finish()
        })
        .await
        .context("tar task failed")??;
        self.compressed
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let key = keys::tar_partitions_folder(&self.name).join(file_name)?;
        self.ctx
            .storage
            .put_bytes(&key, Bytes::from(bytes))
            .await
            .with_context(|| format!("uploading '{key}'"))
    }

    /// Removes what this attempt uploaded and its marker (best effort, bounded): a failed
    /// backup leaves no garbage when storage allows. Markers of other runs that looked at this
    /// name meanwhile are theirs to remove.
    async fn remove_objects(&self) {
        let folder = keys::backup_folder(&self.name);
        let cleanup = async {
            let objects = self.ctx.storage.list(&folder).await?;
            let keys: Vec<Key> = objects
                .into_iter()
                .map(|o| o.key)
                .filter(|k| {
                    k.is_under(&folder)
                        && (*k == self.marker || !keys::is_in_progress_marker(k.file_name()))
                })
                .collect();
            self.ctx.storage.delete(&keys).await
        };
        match tokio::time::timeout(Duration::from_secs(60), cleanup).await {
            Ok(Ok(())) => {
                tracing::info!("removed the objects of the failed backup '{}'", self.name)
            }
            Ok(Err(e)) => tracing::warn!(
                "could not remove the objects of the failed backup '{}': {e}",
                self.name
            ),
            Err(_) => tracing::warn!(
                "gave up removing the objects of the failed backup '{}'",
                self.name
            ),
        }
    }
}

/// `files_metadata.json` of the data parts (every member, its mtime, each part's members)
/// and the bytes of content they hold.
fn files_metadata(done: Vec<PartDone>) -> (FilesMetadata, u64) {
    let mut files_metadata = FilesMetadata::default();
    let zone = jiff::tz::TimeZone::system();
    let mut uncompressed = 0;
    for part in &done {
        uncompressed += part.content;
        let members: Vec<String> = part.members.iter().map(|e| e.member.clone()).collect();
        for entry in &part.members {
            let mtime =
                jiff::Timestamp::try_from(entry.mtime).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
            files_metadata.files.insert(
                entry.member.clone(),
                BackupFileDescription {
                    mtime: GoTime::in_zone(mtime, &zone),
                    ..BackupFileDescription::default()
                },
            );
        }
        files_metadata
            .tar_file_sets
            .insert(part.file_name.clone(), members);
    }
    (files_metadata, uncompressed)
}

/// The sentinel's tablespace spec, `None` without tablespaces.
fn tablespace_spec(walk: &Walk, pgdata: &Path) -> Option<TablespaceSpec> {
    (!walk.tablespaces.is_empty()).then(|| TablespaceSpec {
        base_prefix: pgdata.display().to_string(),
        tablespaces: walk
            .tablespaces
            .iter()
            .map(|t| Tablespace {
                name: t.oid.clone(),
                location: t
                    .location
                    .display()
                    .to_string()
                    .trim_end_matches('/')
                    .to_string(),
                link: format!("pg_tblspc/{}", t.oid),
            })
            .collect(),
    })
}
async fn put_json(ctx: &Context, key: &Key, bytes: &[u8]) -> anyhow::Result<()> {
    ctx.storage
        .put_bytes(key, Bytes::copy_from_slice(bytes))
        .await
        .with_context(|| format!("uploading '{key}'"))
}

/// Counts the bytes written through it.
struct Counting {
    inner: PipeWriter,
    count: Arc<AtomicU64>,
}

impl std::io::Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The host name, as WAL-G records it in the sentinel.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}
