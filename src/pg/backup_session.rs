//! A non-exclusive base backup session, as a typestate: [`PgConn::start_backup`] consumes the
//! connection and returns a [`BackupInProgress`]; [`BackupInProgress::stop`] gives the connection
//! back with the backup's `backup_label`, `tablespace_map` and stop LSN.
//!
//! The backup belongs to its session. **Dropping a [`BackupInProgress`] closes the session, and
//! PostgreSQL then aborts the non-exclusive backup** (it does so whenever a session with a backup
//! under way ends), so an error or a cancelled task never leaves a backup running on the server.
//!
//! Archiving is watched here too: [`PgConn::check_archiving`] before a backup fails fast when
//! the backup could never become usable, and [`PgConn::wait_archived`] after the stop waits, with
//! a deadline, until the last segment the backup needs is archived. The stop itself does not wait
//! for archiving, so it cannot hang on a broken `archive_command`.

use std::time::Duration;

use tokio::time::Instant;

use super::conn::{ArchiverStats, PgConn, column};
use super::lsn::Lsn;
use super::version;
use super::wal::Segment;
use super::{PgError, show_duration};

/// The longest label PostgreSQL accepts (`MAXPGPATH - 1`).
const MAX_LABEL_BYTES: usize = 1023;

/// How often [`PgConn::wait_archived`] polls `pg_stat_archiver`.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// How often [`PgConn::wait_archived`] logs what it waits for.
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// PostgreSQL's archiver tries a file three times in a row before it pauses: that many
/// consecutive failures, or failing for [`FAILING_GRACE`], means archiving is broken rather than
/// hiccuping.
const FAILURES_IN_A_ROW: u64 = 3;

/// How long the archiver may keep failing before [`PgConn::wait_archived`] gives up early.
const FAILING_GRACE: Duration = Duration::from_secs(10);

/// What the server said when the backup started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStart {
    pub label: String,
    /// The start LSN (the redo point of the backup's checkpoint).
    pub lsn: u64,
    /// The WAL file holding the start LSN; `None` on a standby.
    pub wal_file: Option<String>,
    /// The timeline the backup started on.
    pub timeline: u32,
    /// When walg asked for the start (this machine's clock).
    pub time: jiff::Timestamp,
    /// True when the backup is taken from a standby.
    pub in_recovery: bool,
}

/// What the server said when the backup stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStop {
    /// The contents of `backup_label` for the restored data directory.
    pub label_file: String,
    /// The contents of `tablespace_map` (empty without tablespaces).
    pub spcmap_file: String,
    /// The stop LSN: WAL up to here is needed to restore the backup.
    pub stop_lsn: u64,
    /// The WAL file holding the last byte before the stop LSN, the last one the backup needs;
    /// `None` on a standby (see [`stop_segment_name`]).
    pub stop_wal_file: Option<String>,
}

/// A running non-exclusive backup and the session that owns it. Dropping it aborts the backup.
#[derive(Debug)]
pub struct BackupInProgress {
    conn: PgConn,
    start: BackupStart,
}

impl PgConn {
    /// Starts a non-exclusive backup with a fast checkpoint (under the start deadline: the
    /// checkpoint may take minutes on a busy server). The label must be one line of at most
    /// 1023 bytes.
    pub async fn start_backup(self, label: &str) -> Result<BackupInProgress, PgError> {
        const WHAT: &str = "start the backup";
        if label.contains(['\n', '\r', '\0']) || label.len() > MAX_LABEL_BYTES {
            return Err(PgError::Query {
                what: WHAT,
                message: format!("the label must be one line of at most {MAX_LABEL_BYTES} bytes"),
            });
        }
        let time = jiff::Timestamp::now();
        let row = self
            .query_row_with(
                WHAT,
                self.version().start_backup_sql(),
                &[&label],
                self.deadlines().start_backup,
            )
            .await?;
        let lsn_text: String = column(&row, 0, WHAT)?;
        let wal_file: Option<String> = column(&row, 1, WHAT)?;
        let in_recovery: bool = column(&row, 2, WHAT)?;
        let lsn = parse_lsn(&lsn_text, WHAT)?;
        let timeline = match wal_file.as_deref().and_then(timeline_of) {
            Some(timeline) => timeline,
            None => self.timeline().await?,
        };
        tracing::info!(
            "backup started at {lsn_text} on timeline {timeline}{}",
            wal_file
                .as_deref()
                .map(|f| format!(" (wal file {f})"))
                .unwrap_or_default()
        );
        Ok(BackupInProgress {
            conn: self,
            start: BackupStart {
                label: label.to_string(),
                lsn,
                wal_file,
                timeline,
                time,
                in_recovery,
            },
        })
    }

    /// Fails fast when a backup taken now could never be used: `archive_mode` off, nothing
    /// configured to archive, or the archiver failing (its last attempt failed). On a standby
    /// with `archive_mode = on` its primary archives, which cannot be seen from here: that
    /// passes with a warning.
    pub async fn check_archiving(&self) -> Result<(), PgError> {
        let settings = self.archiver_settings().await?;
        match settings.archive_mode.as_str() {
            "off" => {
                return Err(PgError::ArchivingBroken {
                    reason: "archive_mode is off: set archive_mode = on and an archive_command \
                             that runs walg wal-push, then restart postgresql"
                        .to_string(),
                });
            }
            "on" if self.in_recovery().await? => {
                tracing::warn!(
                    "this server is a standby with archive_mode = on: its primary archives the \
                     wal, and walg cannot see from here whether that works"
                );
                return Ok(());
            }
            _ => {}
        }
        if !settings.has_archiver() {
            return Err(PgError::ArchivingBroken {
                reason: "archive_command is empty: set it to run walg wal-push".to_string(),
            });
        }
        let stats = self.archiver_stats().await?;
        if stats.failing() {
            return Err(PgError::ArchivingBroken {
                reason: format!(
                    "the archiver is failing, see the server log: {}",
                    stats.summary()
                ),
            });
        }
        Ok(())
    }

    /// Waits until WAL segment `segment` (24 hex digits) is archived: `pg_stat_archiver` shows
    /// it, or a later segment of its timeline, as archived (or its `.done` status file is
    /// there). Polls every 200 ms and calls `progress` with the latest statistics and the time
    /// waited after each poll; logs what it waits for every 5 s.
    ///
    /// Fails with [`PgError::NotArchived`] after `timeout`, and earlier with
    /// [`PgError::ArchivingBroken`] when archiving is off, when this is a standby that does not
    /// archive itself (`archive_mode` other than `always`), or when the archiver keeps failing
    /// on a file at or before `segment` (three failures in a row, or failing for 10 s). Each
    /// poll is a query under the query deadline, so a stalled server can add at most that to
    /// `timeout`.
    pub async fn wait_archived(
        &self,
        segment: &str,
        timeout: Duration,
        progress: impl Fn(&ArchiverStats, Duration),
    ) -> Result<ArchiverStats, PgError> {
        if !is_segment_name(segment) {
            return Err(PgError::Query {
                what: "wait for archiving",
                message: format!("'{segment}' is not a wal segment name"),
            });
        }
        let settings = self.archiver_settings().await?;
        if settings.archive_mode == "off" {
            return Err(PgError::ArchivingBroken {
                reason: "archive_mode is off".to_string(),
            });
        }
        if settings.archive_mode != "always" && self.in_recovery().await? {
            return Err(PgError::ArchivingBroken {
                reason: format!(
                    "this server is a standby with archive_mode = {}: its primary archives \
                     {segment}, which walg cannot watch from here",
                    settings.archive_mode
                ),
            });
        }
        let started = Instant::now();
        let mut last_log = started;
        let mut status_dir_usable = true;
        // When the archiver was first seen failing, and its failure count then.
        let mut failing_since: Option<(Instant, u64)> = None;
        loop {
            let stats = self.archiver_stats().await?;
            let waited = started.elapsed();
            if archived_by_stats(&stats, segment)
                || (status_dir_usable && self.has_done_file(segment, &mut status_dir_usable).await)
            {
                tracing::info!(
                    "wal segment {segment} is archived (waited {})",
                    show_duration(&waited)
                );
                return Ok(stats);
            }
            if failure_blocks(&stats, segment) {
                let (since, count) =
                    *failing_since.get_or_insert((Instant::now(), stats.failed_count));
                let in_a_row = stats.failed_count.saturating_sub(count) + 1;
                if in_a_row >= FAILURES_IN_A_ROW || since.elapsed() >= FAILING_GRACE {
                    return Err(PgError::ArchivingBroken {
                        reason: format!(
                            "the archiver keeps failing before {segment} is archived, see the \
                             server log: {}",
                            stats.summary()
                        ),
                    });
                }
            } else {
                failing_since = None;
            }
            progress(&stats, waited);
            if waited >= timeout {
                return Err(PgError::NotArchived {
                    segment: segment.to_string(),
                    waited: timeout,
                    last_archived: stats.last_archived_wal,
                });
            }
            if last_log.elapsed() >= LOG_INTERVAL {
                last_log = Instant::now();
                tracing::info!(
                    "waiting for postgresql to archive wal segment {segment} ({} of {}): {}",
                    show_duration(&waited),
                    show_duration(&timeout),
                    stats.summary()
                );
            }
            tokio::time::sleep(POLL_INTERVAL.min(timeout.saturating_sub(waited))).await;
        }
    }

    /// Whether `pg_wal/archive_status/<segment>.done` exists. Listing the directory needs
    /// superuser or `pg_monitor`; without, `usable` turns false and later polls skip this.
    async fn has_done_file(&self, segment: &str, usable: &mut bool) -> bool {
        let name = format!("{segment}.done");
        let result = self
            .query_row_with(
                "list pg_wal/archive_status",
                version::ARCHIVE_STATUS_SQL,
                &[&name],
                self.deadlines().query,
            )
            .await
            .and_then(|row| column::<bool>(&row, 0, "list pg_wal/archive_status"));
        match result {
            Ok(found) => found,
            Err(e) => {
                tracing::debug!("{e}; relying on pg_stat_archiver alone");
                *usable = false;
                false
            }
        }
    }
}

impl BackupInProgress {
    /// What the server said at the start.
    pub fn start(&self) -> &BackupStart {
        &self.start
    }

    /// The session that owns the backup, for queries while it runs (do not start another
    /// backup on it).
    pub fn conn(&self) -> &PgConn {
        &self.conn
    }

    /// Stops the backup (under the stop deadline, without waiting for archiving) and gives the
    /// session back. On error the session is closed, which aborts the backup.
    pub async fn stop(self) -> Result<(PgConn, BackupStop), PgError> {
        const WHAT: &str = "stop the backup";
        let conn = self.conn;
        let row = conn
            .query_row_with(
                WHAT,
                conn.version().stop_backup_sql(),
                &[],
                conn.deadlines().stop_backup,
            )
            .await?;
        let label_file: String = column(&row, 0, WHAT)?;
        let spcmap_file: Option<String> = column(&row, 1, WHAT)?;
        let lsn_text: String = column(&row, 2, WHAT)?;
        let stop_wal_file: Option<String> = column(&row, 3, WHAT)?;
        let stop_lsn = parse_lsn(&lsn_text, WHAT)?;
        if stop_lsn < self.start.lsn {
            return Err(PgError::Query {
                what: WHAT,
                message: format!(
                    "the stop lsn {lsn_text} is before the start lsn {}",
                    Lsn(self.start.lsn)
                ),
            });
        }
        tracing::info!(
            "backup stopped at {lsn_text}{}",
            stop_wal_file
                .as_deref()
                .map(|f| format!(" (last wal file {f})"))
                .unwrap_or_default()
        );
        Ok((
            conn,
            BackupStop {
                label_file,
                spcmap_file: spcmap_file.unwrap_or_default(),
                stop_lsn,
                stop_wal_file,
            },
        ))
    }
}

/// The name of the last WAL segment a backup stopping at `stop_lsn` needs: the one holding the
/// byte before `stop_lsn` (as `pg_walfile_name` computes it). `None` for an invalid segment size.
pub fn stop_segment_name(timeline: u32, stop_lsn: u64, segment_size: u64) -> Option<String> {
    if segment_size == 0 || !segment_size.is_power_of_two() || segment_size > 1 << 30 {
        return None;
    }
    Some(
        Segment {
            timeline,
            number: stop_lsn.saturating_sub(1) / segment_size,
            size: segment_size,
        }
        .name(),
    )
}

fn parse_lsn(text: &str, what: &'static str) -> Result<u64, PgError> {
    Lsn::parse(text)
        .map(Lsn::get)
        .ok_or_else(|| PgError::Query {
            what,
            message: format!("the server returned '{text}', not an lsn"),
        })
}

/// True for 24 upper-case hex digits.
fn is_segment_name(name: &str) -> bool {
    name.len() == 24
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// The timeline of a WAL file name.
fn timeline_of(wal_file: &str) -> Option<u32> {
    is_segment_name(wal_file)
        .then(|| u32::from_str_radix(&wal_file[..8], 16).ok())
        .flatten()
}

/// The segment (24 characters) a file name such as `…03`, `…03.partial` or
/// `…03.00000028.backup` starts with, if it does.
fn segment_prefix(file: &str) -> Option<&str> {
    file.get(..24).filter(|s| is_segment_name(s))
}

/// True when `pg_stat_archiver` proves `segment` archived: the last archived file is that
/// segment, or a later segment of its timeline (the archiver works oldest first). A `.backup`
/// or `.partial` file named after the segment itself proves nothing.
fn archived_by_stats(stats: &ArchiverStats, segment: &str) -> bool {
    let Some(last) = stats.last_archived_wal.as_deref() else {
        return false;
    };
    let Some(prefix) = segment_prefix(last) else {
        return false;
    };
    prefix[..8] == segment[..8] && (prefix > segment || last == segment)
}

/// True when the archiver is failing on a file that keeps `segment` from being archived: any
/// file but a later segment of the same timeline.
fn failure_blocks(stats: &ArchiverStats, segment: &str) -> bool {
    if !stats.failing() {
        return false;
    }
    let later = stats
        .last_failed_wal
        .as_deref()
        .and_then(segment_prefix)
        .is_some_and(|p| p[..8] == segment[..8] && p > segment);
    !later
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(archived: Option<&str>, failed: Option<&str>, failing: bool) -> ArchiverStats {
        let t = |s: i64| Some(jiff::Timestamp::from_second(s).unwrap());
        ArchiverStats {
            archived_count: u64::from(archived.is_some()),
            failed_count: u64::from(failed.is_some()),
            last_archived_wal: archived.map(str::to_string),
            last_failed_wal: failed.map(str::to_string),
            last_archived_time: archived.and(t(100)),
            last_failed_time: failed.and(if failing { t(200) } else { t(50) }),
        }
    }

    const SEG: &str = "000000010000000000000005";

    #[test]
    fn archived_means_this_or_a_later_segment_on_the_timeline() {
        assert!(archived_by_stats(&stats(Some(SEG), None, false), SEG));
        assert!(archived_by_stats(
            &stats(Some("000000010000000000000006"), None, false),
            SEG
        ));
        assert!(archived_by_stats(
            &stats(Some("000000010000000100000000"), None, false),
            SEG
        ));
        for not_yet in [
            "000000010000000000000004",
            "000000010000000000000005.00000028.backup",
            "000000010000000000000005.partial",
            "000000020000000000000006",
            "00000002.history",
        ] {
            assert!(
                !archived_by_stats(&stats(Some(not_yet), None, false), SEG),
                "{not_yet}"
            );
        }
        assert!(
            archived_by_stats(
                &stats(
                    Some("000000010000000000000006.00000028.backup"),
                    None,
                    false
                ),
                SEG
            ),
            "a backup history file of a later segment"
        );
        assert!(!archived_by_stats(&stats(None, None, false), SEG));
    }

    #[test]
    fn failures_that_block() {
        assert!(failure_blocks(&stats(None, Some(SEG), true), SEG));
        assert!(failure_blocks(
            &stats(
                Some("000000010000000000000003"),
                Some("000000010000000000000004"),
                true
            ),
            SEG
        ));
        assert!(failure_blocks(
            &stats(None, Some("00000002.history"), true),
            SEG
        ));
        assert!(!failure_blocks(
            &stats(Some(SEG), Some("000000010000000000000006"), true),
            SEG
        ));
        assert!(
            !failure_blocks(&stats(Some(SEG), Some(SEG), false), SEG),
            "recovered"
        );
    }

    #[test]
    fn stop_segment_is_the_one_before_the_stop_lsn() {
        let mib16 = 16 * 1024 * 1024;
        assert_eq!(
            stop_segment_name(1, 0x300_0028, mib16).as_deref(),
            Some("000000010000000000000003")
        );
        // Exactly at a boundary: the WAL needed ends in the previous segment.
        assert_eq!(
            stop_segment_name(1, 0x300_0000, mib16).as_deref(),
            Some("000000010000000000000002")
        );
        assert_eq!(
            stop_segment_name(2, 0x1_0000_0100, mib16).as_deref(),
            Some("000000020000000100000000")
        );
        assert_eq!(stop_segment_name(1, 5, 3), None);
        assert_eq!(timeline_of("0000000A0000000000000003"), Some(10));
        assert_eq!(timeline_of("00000002.history"), None);
    }
}
