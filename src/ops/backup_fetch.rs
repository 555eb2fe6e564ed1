//! `backup-fetch <dir> <name|LATEST>`: restore a base backup written by walg or WAL-G.
//!
//! Order: resolve the backup (LATEST = newest sentinel by modification time) → read the
//! sentinel and `files_metadata.json` (regular members not listed there are skipped, as WAL-G
//! does) → check the tablespace spec, the target and the tablespace locations, and that every
//! part the documents name is in storage, before anything is written → data parts in parallel
//! (download, decompress, extract; every member checked so nothing lands outside the target) →
//! `backup_label.tar` (and, with `--restore-spec`, a `tablespace_map` naming the new
//! locations) → check that everything the backup lists was restored → fsync of every file and
//! directory (in parallel) → `pg_control.tar` last, fsynced → optionally the recovery
//! configuration.
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
use crate::layout::BackupName;
use crate::layout::backup as keys;
use crate::layout::documents::{FilesMetadata, Sentinel, TablespaceSpec};
use crate::storage::{Key, ObjectMeta, StorageExt};

/// Members restored whatever `files_metadata.json` lists (normalised names).
const ALWAYS: [&str; 3] = [PG_CONTROL, BACKUP_LABEL, TABLESPACE_MAP];
const PG_CONTROL: &str = "global/pg_control";
const BACKUP_LABEL: &str = "backup_label";
const TABLESPACE_MAP: &str = "tablespace_map";
/// How many missing files an error names.
const SHOWN: usize = 5;

/// A member name without its leading `/` or `./`: writers differ there (WAL-G writes `/base/1`,
/// remote backups and other tools `base/1`), the file list and the tars of one backup may too.
fn normalise(member: &str) -> &str {
    member.trim_start_matches("./").trim_start_matches('/')
}

/// A member name as [`normalise`] gives it, without trailing `/` either (GNU tar and others
/// end directory names with one; the file list may not): for matching listed entries with
/// restored ones.
fn entry_name(member: &str) -> &str {
    normalise(member).trim_end_matches('/')
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
    let sentinel = read_sentinel(ctx, &name).await?;
    let metadata = files_metadata(ctx, &name, &sentinel).await?;
    let files = metadata.as_ref().and_then(files_filter);

    // step: the tablespace spec, the target and the tablespace locations; nothing is written
    // before all of them pass.
    let dest = &opts.destination;
    let spec = restore_spec(&opts, &name, &sentinel)?;
    check_target(dest)?;
    if let Some(spec) = &spec {
        check_tablespace_locations(spec)?;
    }

    // step: the parts, grouped; every part the documents name must be there before anything
    // is downloaded.
    let parts = grouped_parts(ctx, &name, &sentinel, metadata.as_ref()).await?;

    // step: write.
    prepare_target(dest)?;
    let redirects = tablespaces(dest, spec.as_ref())?;
    // With --restore-spec the backup's tablespace_map names the old locations; PostgreSQL would
    // re-point pg_tblspc at them during recovery. A map naming the new ones is written instead.
    let new_map = match (&opts.restore_spec, &spec) {
        (Some(_), Some(spec)) => Some(tablespace_map(spec)),
        _ => None,
    };
    let total: u64 = sentinel.uncompressed_size.try_into().unwrap_or(0);
    progress.begin(
        &format!("backup-fetch {name}"),
        (total > 0).then_some(total),
    );
    let options = Arc::new(ExtractOptions {
        allow_symlinks: true,
        skip_symlinks: false,
        redirects,
    });
    let restore = Restore {
        name: name.to_string(),
        dest: dest.clone(),
        filter: Arc::new(files),
        expected: metadata.as_ref().map(expected_members).unwrap_or_default(),
        tar_file_sets: metadata.map(|m| m.tar_file_sets).unwrap_or_default(),
        new_map,
        options,
    };
    let restored = restore_parts(ctx, &restore, parts, &progress).await;
    progress.end();
    let report = restored?;
    fix_data_dir_mode(dest)?;
    write_recovery(&opts)?;
    tracing::info!(
        "backup '{name}' restored to '{}': {} files, {} bytes",
        dest.display(),
        report.files.len(),
        report.bytes
    );
    Ok(BackupFetchReport {
        name: name.to_string(),
        files: report.files.len(),
        bytes: report.bytes,
        skipped: report.skipped,
    })
}

/// The sentinel of backup `name`, which must be a full backup.
async fn read_sentinel(ctx: &Context, name: &BackupName) -> anyhow::Result<Sentinel> {
    let sentinel_bytes = ctx.storage.get_bytes(&keys::sentinel_key(name)).await?;
    let sentinel = Sentinel::from_json(&sentinel_bytes)
        .with_context(|| format!("reading the sentinel of backup '{name}'"))?;
    if sentinel.is_delta() {
        bail!("backup '{name}' is a delta backup; walg does not restore delta backups yet");
    }
    Ok(sentinel)
}

/// The tablespace spec the restore follows (`--restore-spec`, else the sentinel's), checked
/// against the target.
fn restore_spec(
    opts: &BackupFetchOptions,
    name: &str,
    sentinel: &Sentinel,
) -> anyhow::Result<Option<TablespaceSpec>> {
    let dest = &opts.destination;
    let spec = match &opts.restore_spec {
        Some(path) => Some(
            TablespaceSpec::from_json(
                &std::fs::read(path).with_context(|| format!("reading '{}'", path.display()))?,
            )
            .with_context(|| format!("parsing restore spec '{}'", path.display()))?,
        ),
        None => sentinel.spec.clone(),
    };
    if let Some(spec) = &spec {
        let absolute =
            std::path::absolute(dest).with_context(|| format!("resolving '{}'", dest.display()))?;
        spec.check_restorable(&absolute.to_string_lossy())
            .map_err(|reason| match &opts.restore_spec {
                Some(path) => anyhow::anyhow!("restore spec '{}': {reason}", path.display()),
                None => anyhow::anyhow!("the tablespace spec of backup '{name}': {reason}"),
            })?;
    }
    Ok(spec)
}

/// The backup's parts, checked complete and grouped: data first, then `backup_label`,
/// `pg_control` last.
async fn grouped_parts(
    ctx: &Context,
    name: &BackupName,
    sentinel: &Sentinel,
    metadata: Option<&FilesMetadata>,
) -> anyhow::Result<[Vec<ObjectMeta>; 3]> {
    let folder = keys::tar_partitions_folder(name);
    let mut objects = ctx.storage.list(&folder).await?;
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    check_parts(name, sentinel, metadata, &objects)?;
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
    Ok([data, label, control])
}

/// With `--recovery`: `recovery.signal` and the `restore_command` (with the target).
fn write_recovery(opts: &BackupFetchOptions) -> anyhow::Result<()> {
    if let Some((restore_command, target)) = &opts.recovery {
        let dest = &opts.destination;
        recovery_conf::write(dest, restore_command, target)?;
        tracing::info!(
            "wrote recovery.signal and restore_command to '{}'",
            dest.display()
        );
    }
    Ok(())
}

/// PostgreSQL starts only on a data directory of mode 0700 or 0750; the backup's `/` member
/// may carry another mode (other writers use 0755): it is narrowed.
fn fix_data_dir_mode(dest: &Path) -> anyhow::Result<()> {
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
    Ok(())
}

/// What one restore writes where, shared by its steps.
struct Restore {
    name: String,
    dest: PathBuf,
    /// Regular members to write (normalised), `None` for all.
    filter: Arc<Option<HashSet<String>>>,
    /// Members `files_metadata.json` lists as present in this backup (normalised).
    expected: Vec<String>,
    /// Which part holds which members, when the backup says.
    tar_file_sets: std::collections::BTreeMap<String, Vec<String>>,
    /// The `tablespace_map` written instead of the backup's (with `--restore-spec`).
    new_map: Option<Vec<u8>>,
    options: Arc<ExtractOptions>,
}

/// Extracts the data parts, then `backup_label.tar`; checks that everything the backup lists
/// came back; fsyncs everything; then `pg_control.tar`, fsynced too (field notes rule 7: a
/// restore that stops midway never looks complete).
async fn restore_parts(
    ctx: &Context,
    restore: &Restore,
    [data, label, control]: [Vec<ObjectMeta>; 3],
    progress: &Arc<dyn Progress>,
) -> anyhow::Result<Totals> {
    let mut report = Totals::default();
    report.add(extract_all(ctx, restore, data, Phase::Data, progress).await?);
    report.add(extract_all(ctx, restore, label, Phase::Data, progress).await?);
    if let Some(map) = &restore.new_map {
        let path = restore.dest.join(TABLESPACE_MAP);
        write_new_file(&path, map)?;
        report.files.push(path);
        report.dirs.push(restore.dest.clone());
        report.members.insert(TABLESPACE_MAP.to_string());
    }
    check_complete(restore, &report)?;
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
    let control_report = extract_all(ctx, restore, control, Phase::Control, progress).await?;
    if !control_report
        .members
        .iter()
        .any(|m| normalise(m) == PG_CONTROL)
    {
        bail!(
            "backup '{}' is incomplete: its pg_control.tar holds no {PG_CONTROL}",
            restore.name
        );
    }
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

/// Fails, naming the missing files and the parts that should have held them, unless every
/// member `files_metadata.json` lists and `backup_label` were restored.
fn check_complete(restore: &Restore, report: &Totals) -> anyhow::Result<()> {
    let missing: Vec<&str> = restore
        .expected
        .iter()
        .map(String::as_str)
        .chain([BACKUP_LABEL])
        .filter(|m| !report.members.contains(*m))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let mut holders: Vec<&str> = restore
        .tar_file_sets
        .iter()
        .filter(|(_, members)| members.iter().any(|m| missing.contains(&entry_name(m))))
        .map(|(part, _)| part.as_str())
        .collect();
    holders.dedup();
    let shown: Vec<String> = missing
        .iter()
        .take(SHOWN)
        .map(|m| format!("'{m}'"))
        .collect();
    let more = missing.len().saturating_sub(SHOWN);
    let from = if holders.is_empty() {
        String::new()
    } else {
        format!(" (they belong to {})", holders.join(", "))
    };
    bail!(
        "backup '{}' is incomplete: {} listed file(s) were not restored{from}: {}{}",
        restore.name,
        missing.len(),
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    )
}

/// Before anything is downloaded: the parts `TarFileSets` names must all be in storage (named
/// with their compression extension, as WAL-G writes them, or without it, as some other
/// writers do). Without a file list, the parts must add up to at least the compressed size the
/// sentinel records (with one, a short part is found, and named, when it is read).
fn check_parts(
    name: &str,
    sentinel: &Sentinel,
    metadata: Option<&FilesMetadata>,
    objects: &[ObjectMeta],
) -> anyhow::Result<()> {
    let present: HashSet<&str> = objects
        .iter()
        .flat_map(|o| {
            let file = o.key.file_name();
            let bare = file
                .rsplit_once('.')
                .map(|(stem, _)| stem)
                .filter(|stem| stem.ends_with(".tar"));
            std::iter::once(file).chain(bare)
        })
        .collect();
    if let Some(metadata) = metadata {
        for (part, members) in &metadata.tar_file_sets {
            if !present.contains(part.as_str()) {
                let shown: Vec<String> = members
                    .iter()
                    .take(SHOWN)
                    .map(|m| format!("'{m}'"))
                    .collect();
                bail!(
                    "backup '{name}' is incomplete: its part '{part}' is missing from storage \
                     ({} file(s), e.g. {})",
                    members.len(),
                    shown.join(", ")
                );
            }
        }
    }
    if metadata.is_some_and(|m| !m.files.is_empty()) {
        return Ok(());
    }
    let stored: u64 = objects.iter().map(|o| o.size).sum();
    let recorded = u64::try_from(sentinel.compressed_size).unwrap_or(0);
    if stored < recorded {
        bail!(
            "backup '{name}' is incomplete: its parts hold {stored} bytes, fewer than the \
             {recorded} its sentinel records"
        );
    }
    Ok(())
}

/// Members `files_metadata.json` says this backup's parts hold (skipped ones come from a
/// parent), normalised, without those restored by their own rules.
fn expected_members(metadata: &FilesMetadata) -> Vec<String> {
    metadata
        .files
        .iter()
        .filter(|(_, d)| !d.is_skipped)
        .map(|(k, _)| entry_name(k).to_string())
        .filter(|m| !ALWAYS.contains(&m.as_str()))
        .collect()
}

/// A `tablespace_map` naming the spec's locations, as PostgreSQL writes it (`<oid> <path>`
/// lines; the spec was checked to hold no line breaks).
fn tablespace_map(spec: &TablespaceSpec) -> Vec<u8> {
    let mut map = String::new();
    for t in &spec.tablespaces {
        map.push_str(&format!("{} {}\n", t.name, t.location));
    }
    map.into_bytes()
}

/// Writes a new file of mode 0600 that must not exist yet.
fn write_new_file(path: &Path, content: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating '{}'", path.display()))?;
    file.write_all(content)
        .with_context(|| format!("writing '{}'", path.display()))
}

/// `LATEST` or an existing backup's name.
async fn resolve(ctx: &Context, requested: &str) -> anyhow::Result<BackupName> {
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
    let name = BackupName::parse(requested)?;
    if !ctx.storage.exists(&keys::sentinel_key(&name)).await? {
        return Err(HintedError::new(
            format!("backup '{requested}' does not exist"),
            "walg backup-list shows the backups in this storage",
        )
        .into());
    }
    Ok(name)
}

/// `files_metadata.json` (or its legacy copy in the sentinel), if the backup has one.
async fn files_metadata(
    ctx: &Context,
    name: &BackupName,
    sentinel: &Sentinel,
) -> anyhow::Result<Option<FilesMetadata>> {
    if sentinel.files_metadata_disabled {
        return Ok(None);
    }
    match ctx.storage.get_bytes(&keys::files_metadata_key(name)).await {
        Ok(bytes) => Ok(Some(FilesMetadata::from_json(&bytes).with_context(
            || format!("reading files_metadata.json of backup '{name}'"),
        )?)),
        Err(e) if e.is_not_found() => Ok(sentinel.legacy_files_metadata()),
        Err(e) => Err(e.into()),
    }
}

/// The set of regular members to restore, or `None` for "all" (no file list).
fn files_filter(metadata: &FilesMetadata) -> Option<HashSet<String>> {
    (!metadata.files.is_empty()).then(|| {
        metadata
            .files
            .keys()
            .map(|k| normalise(k).to_string())
            .collect()
    })
}

/// The target must be empty or absent.
fn check_target(dest: &Path) -> anyhow::Result<()> {
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
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading '{}'", dest.display()))),
    }
}

/// Every tablespace location must be empty or absent.
fn check_tablespace_locations(spec: &TablespaceSpec) -> anyhow::Result<()> {
    for space in &spec.tablespaces {
        let location = Path::new(&space.location);
        match std::fs::symlink_metadata(location) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "tablespace location '{}' exists and is not a directory",
                location.display()
            ),
            Err(e) => {
                return Err(
                    anyhow::Error::new(e).context(format!("reading '{}'", location.display()))
                );
            }
        }
        if std::fs::read_dir(location).is_ok_and(|mut d| d.next().is_some()) {
            return Err(HintedError::new(
                format!(
                    "tablespace location '{}' is not empty; refusing to restore into it",
                    location.display()
                ),
                "give --restore-spec with new locations for the tablespaces",
            )
            .into());
        }
    }
    Ok(())
}

/// Creates the (checked) target if it is absent and gives it mode 0700.
fn prepare_target(dest: &Path) -> anyhow::Result<()> {
    check_target(dest)?;
    if !dest.exists() {
        crate::storage::fs::create_dir_durable(dest)?;
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dest, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of '{}'", dest.display()))?;
    Ok(())
}

/// Creates `pg_tblspc/<oid>` links to each tablespace location (checked beforehand: valid,
/// empty or absent) and returns the redirects that send their members there.
fn tablespaces(dest: &Path, spec: Option<&TablespaceSpec>) -> anyhow::Result<Vec<Redirect>> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let mut redirects = Vec::new();
    let tblspc = dest.join("pg_tblspc");
    std::fs::create_dir_all(&tblspc).with_context(|| format!("creating '{}'", tblspc.display()))?;
    for space in &spec.tablespaces {
        let location = PathBuf::from(&space.location);
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
    /// Normalised names of the members restored.
    members: HashSet<String>,
}

impl Totals {
    fn add(&mut self, report: ExtractReport) {
        self.files.extend(report.files);
        self.dirs.extend(report.dirs);
        self.bytes += report.bytes;
        self.skipped += report.skipped;
        self.members
            .extend(report.members.iter().map(|m| entry_name(m).to_string()));
    }
}

/// Which parts an extraction handles: `global/pg_control` is written only from
/// `pg_control.tar`, whichever other part also holds it (remote backups do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Data,
    Control,
}

/// Downloads, decompresses and extracts `objects`, `WALG_DOWNLOAD_CONCURRENCY` at once.
async fn extract_all(
    ctx: &Context,
    restore: &Restore,
    objects: Vec<ObjectMeta>,
    phase: Phase,
    progress: &Arc<dyn Progress>,
) -> anyhow::Result<ExtractReport> {
    let limit = ctx.settings.download_concurrency.max(1);
    let mut pending = objects.into_iter();
    let mut running = JoinSet::new();
    let mut total = ExtractReport::default();
    let skip_map = restore.new_map.is_some();
    loop {
        while running.len() < limit {
            let Some(object) = pending.next() else { break };
            running.spawn(extract_one(
                ctx.clone(),
                object.key,
                restore.dest.clone(),
                Arc::clone(&restore.filter),
                Arc::clone(&restore.options),
                (phase, skip_map),
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
                total.members.extend(report.members);
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
    (phase, skip_map): (Phase, bool),
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
        let keep = |member: &str| {
            let member = normalise(member);
            if (member == PG_CONTROL) != (phase == Phase::Control) {
                return false;
            }
            if skip_map && member == TABLESPACE_MAP {
                return false;
            }
            match filter.as_ref() {
                None => true,
                Some(files) => files.contains(member) || ALWAYS.contains(&member),
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
