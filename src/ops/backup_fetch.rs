//! `backup-fetch <dir> <name|LATEST>`: restore a base backup written by walg or WAL-G.
//!
//! Order: resolve the backup (LATEST = newest sentinel by modification time) → read the
//! sentinel and `files_metadata.json` (regular members not listed there are skipped, as WAL-G
//! does) → refuse a non-empty target → data parts in parallel (download, decompress, extract;
//! every member checked so nothing lands outside the target) → `backup_label.tar` → fsync of
//! every file and directory (in parallel) → `pg_control.tar` last, fsynced → optionally the
//! recovery configuration.
//!
//! WAL-G compat: internal/databases/postgres/backup_fetch_handler.go, internal/extract.go.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, bail};
use tokio::task::JoinSet;
use tokio_util::io::SyncIoBridge;

use super::progress::Progress;
use super::recovery_conf::{self, RecoveryTarget};
use super::{Context, HintedError, backup_list};
use crate::archive::{self, ExtractOptions, ExtractReport, Redirect};
use crate::compression::{self, Decoder};
use crate::layout::backup as keys;
use crate::layout::documents::{FilesMetadata, Sentinel, TablespaceSpec};
use crate::storage::{Key, ObjectMeta, StorageExt};

/// Members restored whatever `files_metadata.json` lists (normalised names).
const ALWAYS: [&str; 3] = ["global/pg_control", "backup_label", "tablespace_map"];

/// A member name without its leading `/` or `./`: writers differ there (WAL-G writes `/base/1`,
/// remote backups and other tools `base/1`), the file list and the tars of one backup may too.
fn normalise(member: &str) -> &str {
    member.trim_start_matches("./").trim_start_matches('/')
}

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct BackupFetchOptions {
    pub destination: PathBuf,
    /// A backup name or `LATEST`.
    pub name: String,
    /// `--restore-spec`: where tablespaces go.
    pub restore_spec: Option<PathBuf>,
    /// Write `recovery.signal` and this `restore_command` (with the target) when set.
    pub recovery: Option<(String, RecoveryTarget)>,
}

/// The result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupFetchReport {
    pub name: String,
    pub files: usize,
    pub bytes: u64,
    pub skipped: u64,
}

/// Runs `backup-fetch`.
pub async fn run(
    ctx: &Context,
    opts: BackupFetchOptions,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<BackupFetchReport> {
    if let Some((_, target)) = &opts.recovery {
        target.validate()?;
    }
    // step: which backup.
    let name = resolve(ctx, &opts.name).await?;
    let sentinel_bytes = ctx.storage.get_bytes(&keys::sentinel_key(&name)?).await?;
    let sentinel = Sentinel::from_json(&sentinel_bytes)
        .with_context(|| format!("reading the sentinel of backup '{name}'"))?;
    if sentinel.is_delta() {
        bail!("backup '{name}' is a delta backup; walg does not restore delta backups yet");
    }
    let files = files_filter(ctx, &name, &sentinel).await?;

    // step: the target must be empty (or absent); tablespaces must not clobber anything.
    let dest = &opts.destination;
    prepare_target(dest)?;
    let spec = match &opts.restore_spec {
        Some(path) => Some(
            TablespaceSpec::from_json(
                &std::fs::read(path).with_context(|| format!("reading '{}'", path.display()))?,
            )
            .with_context(|| format!("parsing restore spec '{}'", path.display()))?,
        ),
        None => sentinel.spec.clone(),
    };
    let redirects = tablespaces(dest, spec.as_ref())?;

    // step: the parts, grouped: data first, then backup_label, pg_control last.
    let folder = keys::tar_partitions_folder(&name)?;
    let mut objects = ctx.storage.list(&folder).await?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let (mut data, mut label, mut control) = (Vec::new(), Vec::new(), Vec::new());
    for object in objects {
        let file = object.key.file_name();
        if file.starts_with("pg_control.tar") {
            control.push(object);
        } else if file.starts_with("backup_label.tar") {
            label.push(object);
        } else {
            data.push(object);
        }
    }
    if control.is_empty() {
        bail!("backup '{name}' has no pg_control.tar: it is incomplete or not a WAL-G backup");
    }
    let total: u64 = sentinel.uncompressed_size.try_into().unwrap_or(0);
    progress.begin(
        &format!("backup-fetch {name}"),
        (total > 0).then_some(total),
    );
    let options = Arc::new(ExtractOptions {
        allow_symlinks: true,
        skip_symlinks: true,
        redirects,
    });
    let filter = Arc::new(files);
    let restored = restore_parts(
        ctx,
        [data, label, control],
        dest,
        &filter,
        &options,
        &progress,
    )
    .await;
    progress.end();
    let report = restored?;
    // PostgreSQL starts only on a data directory of mode 0700 or 0750; the backup's `/` member
    // may carry another mode (other writers use 0755).
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dest)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0o700);
        if mode != 0o700 && mode != 0o750 {
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode & 0o750 | 0o700))
                .with_context(|| format!("setting the mode of '{}'", dest.display()))?;
            crate::storage::fs::sync_dir(dest)
                .with_context(|| format!("syncing '{}'", dest.display()))?;
        }
    }

    if let Some((restore_command, target)) = &opts.recovery {
        recovery_conf::write(dest, restore_command, target)?;
        tracing::info!(
            "wrote recovery.signal and restore_command to '{}'",
            dest.display()
        );
    }
    tracing::info!(
        "backup '{name}' restored to '{}': {} files, {} bytes",
        dest.display(),
        report.files.len(),
        report.bytes
    );
    Ok(BackupFetchReport {
        name,
        files: report.files.len(),
        bytes: report.bytes,
        skipped: report.skipped,
    })
}

/// Extracts the data parts, then `backup_label.tar`; fsyncs everything; then `pg_control.tar`,
/// fsynced too (field notes rule 7: a restore that stops midway never looks complete).
async fn restore_parts(
    ctx: &Context,
    [data, label, control]: [Vec<ObjectMeta>; 3],
    dest: &Path,
    filter: &Arc<Option<HashSet<String>>>,
    options: &Arc<ExtractOptions>,
    progress: &Arc<dyn Progress>,
) -> anyhow::Result<Totals> {
    let mut report = Totals::default();
    report.add(extract_all(ctx, data, dest, filter, options, progress).await?);
    report.add(extract_all(ctx, label, dest, filter, options, progress).await?);
    if !ctx.settings.backup.disable_fsync {
        let paths: Vec<PathBuf> = report
            .files
            .iter()
            .chain(report.dirs.iter())
            .cloned()
            .collect();
        let threads = ctx.settings.download_concurrency.clamp(1, 16);
        tokio::task::spawn_blocking(move || archive::sync_all(&paths, threads))
            .await
            .context("fsync task failed")?
            .context("syncing the restored files")?;
    }
    let control_report = extract_all(ctx, control, dest, filter, options, progress).await?;
    if !ctx.settings.backup.disable_fsync {
        let paths: Vec<PathBuf> = control_report
            .files
            .iter()
            .chain(control_report.dirs.iter())
            .cloned()
            .collect();
        tokio::task::spawn_blocking(move || archive::sync_all(&paths, 1))
            .await
            .context("fsync task failed")?
            .context("syncing pg_control")?;
    }
    report.add(control_report);
    Ok(report)
}

/// `LATEST` or an existing backup's name.
async fn resolve(ctx: &Context, requested: &str) -> anyhow::Result<String> {
    if requested == "LATEST" {
        return match backup_list::latest(ctx.storage.as_ref()).await? {
            Some(latest) => Ok(latest.name),
            None => Err(HintedError::new(
                "no backups found",
                "run walg backup-push first, or check the storage prefix",
            )
            .into()),
        };
    }
    if !ctx.storage.exists(&keys::sentinel_key(requested)?).await? {
        return Err(HintedError::new(
            format!("backup '{requested}' does not exist"),
            "walg backup-list shows the backups in this storage",
        )
        .into());
    }
    Ok(requested.to_string())
}

/// The set of regular members to restore, or `None` for "all" (no files metadata).
async fn files_filter(
    ctx: &Context,
    name: &str,
    sentinel: &Sentinel,
) -> anyhow::Result<Option<HashSet<String>>> {
    if sentinel.files_metadata_disabled {
        return Ok(None);
    }
    let metadata = match ctx
        .storage
        .get_bytes(&keys::files_metadata_key(name)?)
        .await
    {
        Ok(bytes) => Some(
            FilesMetadata::from_json(&bytes)
                .with_context(|| format!("reading files_metadata.json of backup '{name}'"))?,
        ),
        Err(e) if e.is_not_found() => sentinel.legacy_files_metadata(),
        Err(e) => return Err(e.into()),
    };
    Ok(metadata.filter(|m| !m.files.is_empty()).map(|m| {
        m.files
            .into_keys()
            .map(|k| normalise(&k).to_string())
            .collect()
    }))
}

fn prepare_target(dest: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(HintedError::new(
                    format!(
                        "'{}' is not empty; refusing to restore into it",
                        dest.display()
                    ),
                    "restore into a new or empty directory",
                )
                .into());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::storage::fs::create_dir_durable(dest)?;
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading '{}'", dest.display())));
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of '{}'", dest.display()))?;
    Ok(())
}

/// Creates `pg_tblspc/<oid>` links to each tablespace location (which must be empty or
/// absent) and returns the redirects that send their members there.
fn tablespaces(dest: &Path, spec: Option<&TablespaceSpec>) -> anyhow::Result<Vec<Redirect>> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let mut redirects = Vec::new();
    let tblspc = dest.join("pg_tblspc");
    std::fs::create_dir_all(&tblspc).with_context(|| format!("creating '{}'", tblspc.display()))?;
    for space in &spec.tablespaces {
        let location = PathBuf::from(&space.location);
        if std::fs::read_dir(&location).is_ok_and(|mut d| d.next().is_some()) {
            return Err(HintedError::new(
                format!(
                    "tablespace location '{}' is not empty; refusing to restore into it",
                    location.display()
                ),
                "give --restore-spec with new locations for the tablespaces",
            )
            .into());
        }
        std::fs::create_dir_all(&location)
            .with_context(|| format!("creating '{}'", location.display()))?;
        let link = dest.join(&space.link);
        std::os::unix::fs::symlink(&location, &link)
            .with_context(|| format!("linking '{}'", link.display()))?;
        redirects.push(Redirect {
            member_prefix: format!("/{}", space.link.trim_start_matches('/')),
            dir: location,
        });
    }
    Ok(redirects)
}

/// What all extractions wrote.
#[derive(Debug, Default)]
struct Totals {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
    bytes: u64,
    skipped: u64,
}

impl Totals {
    fn add(&mut self, report: ExtractReport) {
        self.files.extend(report.files);
        self.dirs.extend(report.dirs);
        self.bytes += report.bytes;
        self.skipped += report.skipped;
    }
}

/// Downloads, decompresses and extracts `objects`, `WALG_DOWNLOAD_CONCURRENCY` at once.
async fn extract_all(
    ctx: &Context,
    objects: Vec<ObjectMeta>,
    dest: &Path,
    filter: &Arc<Option<HashSet<String>>>,
    options: &Arc<ExtractOptions>,
    progress: &Arc<dyn Progress>,
) -> anyhow::Result<ExtractReport> {
    let limit = ctx.settings.download_concurrency.max(1);
    let mut pending = objects.into_iter();
    let mut running = JoinSet::new();
    let mut total = ExtractReport::default();
    loop {
        while running.len() < limit {
            let Some(object) = pending.next() else { break };
            running.spawn(extract_one(
                ctx.clone(),
                object.key,
                dest.to_path_buf(),
                Arc::clone(filter),
                Arc::clone(options),
                Arc::clone(progress),
            ));
        }
        match running.join_next().await {
            None => return Ok(total),
            Some(joined) => {
                let report = joined.context("extraction task failed")??;
                total.files.extend(report.files);
                total.dirs.extend(report.dirs);
                total.bytes += report.bytes;
                total.skipped += report.skipped;
                total.skipped_symlinks += report.skipped_symlinks;
            }
        }
    }
}

async fn extract_one(
    ctx: Context,
    key: Key,
    dest: PathBuf,
    filter: Arc<Option<HashSet<String>>>,
    options: Arc<ExtractOptions>,
    progress: Arc<dyn Progress>,
) -> anyhow::Result<ExtractReport> {
    let file = key.file_name().to_string();
    let ext = file.rsplit_once('.').map_or("", |(_, ext)| ext);
    let decoder = Decoder::from_extension(ext)
        .ok_or_else(|| anyhow::anyhow!("'{key}': walg cannot read the '.{ext}' format"))?;
    let reader = ctx.storage.get(&key).await?;
    let result = tokio::task::spawn_blocking(move || {
        let decoded = compression::decoder(decoder, SyncIoBridge::new(reader))?;
        let counted = CountingReader {
            inner: decoded,
            progress,
        };
        let keep = |member: &str| match filter.as_ref() {
            None => true,
            Some(files) => {
                let member = normalise(member);
                files.contains(member) || ALWAYS.contains(&member)
            }
        };
        archive::extract(counted, &dest, &keep, &options).map_err(anyhow::Error::new)
    })
    .await
    .context("extraction task failed")?;
    result.with_context(|| format!("restoring '{key}'"))
}

/// Reports bytes read to the progress display.
struct CountingReader<R> {
    inner: R,
    progress: Arc<dyn Progress>,
}

impl<R: std::io::Read> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}
