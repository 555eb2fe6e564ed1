//! Server versions walg supports (PostgreSQL 13 to 18) and every SQL string that differs between
//! them, in one place. Version-independent queries live here too, so that all SQL walg sends is
//! in this file.

use std::fmt;

use super::PgError;

/// The oldest supported major version.
pub const MIN_MAJOR: u32 = 13;
/// The newest supported major version.
pub const MAX_MAJOR: u32 = 18;

/// A supported server version, from `server_version_num` (`150004` is 15.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion(u32);

impl ServerVersion {
    /// Accepts 13.0 to 18.x; anything else is [`PgError::UnsupportedVersion`].
    pub fn from_num(num: u32) -> Result<ServerVersion, PgError> {
        let major = num / 10_000;
        if (MIN_MAJOR..=MAX_MAJOR).contains(&major) {
            Ok(ServerVersion(num))
        } else {
            Err(PgError::UnsupportedVersion(num))
        }
    }

    /// `server_version_num`.
    pub fn num(self) -> u32 {
        self.0
    }

    /// The major version (15 for 15.4).
    pub fn major(self) -> u32 {
        self.0 / 10_000
    }

    /// Starts a non-exclusive backup with a fast checkpoint. `$1` is the label. Returns the start
    /// LSN as text, the start WAL file name (`NULL` on a standby, where `pg_walfile_name` is not
    /// allowed) and `pg_is_in_recovery()`.
    pub fn start_backup_sql(self) -> &'static str {
        if self.major() >= 15 {
            "select lsn::text, \
             case when pg_is_in_recovery() then null else pg_walfile_name(lsn) end, \
             pg_is_in_recovery() \
             from pg_backup_start($1, true) as lsn"
        } else {
            "select lsn::text, \
             case when pg_is_in_recovery() then null else pg_walfile_name(lsn) end, \
             pg_is_in_recovery() \
             from pg_start_backup($1, true, false) as lsn"
        }
    }

    /// Stops the non-exclusive backup of this session without waiting for WAL archiving
    /// (walg waits itself, with a deadline). Returns `labelfile`, `spcmapfile`, the stop LSN as
    /// text and the WAL file holding the last byte before the stop LSN (`NULL` on a standby).
    pub fn stop_backup_sql(self) -> &'static str {
        if self.major() >= 15 {
            "select labelfile, spcmapfile, lsn::text, \
             case when pg_is_in_recovery() then null else pg_walfile_name(lsn) end \
             from pg_backup_stop(false)"
        } else {
            "select labelfile, spcmapfile, lsn::text, \
             case when pg_is_in_recovery() then null else pg_walfile_name(lsn) end \
             from pg_stop_backup(false, false)"
        }
    }

    /// `archive_mode`, `archive_command` and `archive_library` (`NULL` before 15, which has no
    /// archive modules).
    pub fn archiver_settings_sql(self) -> &'static str {
        if self.major() >= 15 {
            "select current_setting('archive_mode'), current_setting('archive_command'), \
             current_setting('archive_library')"
        } else {
            "select current_setting('archive_mode'), current_setting('archive_command'), \
             null::text"
        }
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&version_text(self.0))
    }
}

/// `150004` → `15.4`, `90624` → `9.6.24` (the numbering changed with 10).
pub fn version_text(num: u32) -> String {
    if num >= 100_000 {
        format!("{}.{}", num / 10_000, num % 10_000)
    } else {
        format!("{}.{}.{}", num / 10_000, num / 100 % 100, num % 100)
    }
}

/// `server_version_num` as an integer.
pub const SERVER_VERSION_NUM_SQL: &str = "select current_setting('server_version_num')::int4";

/// The system identifier of the cluster (`int8`).
pub const SYSTEM_IDENTIFIER_SQL: &str = "select system_identifier from pg_control_system()";

/// The data directory as the server sees it.
pub const DATA_DIRECTORY_SQL: &str = "select current_setting('data_directory')";

/// `pg_is_in_recovery()`.
pub const IN_RECOVERY_SQL: &str = "select pg_is_in_recovery()";

/// The timeline of the last checkpoint (`int4`).
pub const TIMELINE_SQL: &str = "select timeline_id from pg_control_checkpoint()";

/// The WAL segment size in bytes (`int4`).
pub const WAL_SEGMENT_SIZE_SQL: &str = "select bytes_per_wal_segment from pg_control_init()";

/// The row of `pg_stat_archiver`; times as microseconds since the Unix epoch (`int8`).
pub const ARCHIVER_STATS_SQL: &str = "select archived_count, failed_count, \
     last_archived_wal, last_failed_wal, \
     (extract(epoch from last_archived_time) * 1000000)::int8, \
     (extract(epoch from last_failed_time) * 1000000)::int8 \
     from pg_stat_archiver";

/// Whether `$1` (a file name such as `000000010000000000000003.done`) is in
/// `pg_wal/archive_status` (needs superuser or `pg_monitor`).
pub const ARCHIVE_STATUS_SQL: &str =
    "select count(*) > 0 from pg_ls_archive_statusdir() where name = $1";

/// A cheap round trip, to see that a session is alive.
pub const PING_SQL: &str = "select 1";

#[cfg(test)]
mod tests {
    use super::*;

    fn v(major: u32) -> ServerVersion {
        ServerVersion::from_num(major * 10_000 + 2).unwrap()
    }

    fn assert_common(sql: &str) {
        assert!(sql.contains("lsn::text"), "{sql}");
        assert!(
            sql.contains("case when pg_is_in_recovery() then null else pg_walfile_name(lsn) end"),
            "{sql}"
        );
    }

    fn assert_old_style(major: u32) {
        let version = v(major);
        assert_eq!(version.major(), major);
        let start = version.start_backup_sql();
        assert!(
            start.contains("pg_start_backup($1, true, false)"),
            "{start}"
        );
        assert_common(start);
        let stop = version.stop_backup_sql();
        assert!(stop.contains("from pg_stop_backup(false, false)"), "{stop}");
        assert!(stop.starts_with("select labelfile, spcmapfile, lsn::text"));
        assert_common(stop);
        assert!(version.archiver_settings_sql().contains("null::text"));
        assert!(!version.archiver_settings_sql().contains("archive_library"));
    }

    fn assert_new_style(major: u32) {
        let version = v(major);
        assert_eq!(version.major(), major);
        let start = version.start_backup_sql();
        assert!(
            start.contains("from pg_backup_start($1, true) as lsn"),
            "{start}"
        );
        assert!(!start.contains("pg_start_backup"));
        assert_common(start);
        let stop = version.stop_backup_sql();
        assert!(stop.contains("from pg_backup_stop(false)"), "{stop}");
        assert!(stop.starts_with("select labelfile, spcmapfile, lsn::text"));
        assert_common(stop);
        assert!(
            version
                .archiver_settings_sql()
                .contains("current_setting('archive_library')")
        );
    }

    #[test]
    fn postgresql_13() {
        assert_old_style(13);
    }

    #[test]
    fn postgresql_14() {
        assert_old_style(14);
    }

    #[test]
    fn postgresql_15() {
        assert_new_style(15);
    }

    #[test]
    fn postgresql_16() {
        assert_new_style(16);
    }

    #[test]
    fn postgresql_17() {
        assert_new_style(17);
    }

    #[test]
    fn postgresql_18() {
        assert_new_style(18);
    }

    #[test]
    fn unsupported_versions_are_refused() {
        for num in [90_624, 100_023, 120_022, 190_000, 0] {
            assert!(
                matches!(ServerVersion::from_num(num), Err(PgError::UnsupportedVersion(n)) if n == num),
                "{num}"
            );
        }
        assert!(ServerVersion::from_num(130_000).is_ok());
        assert!(ServerVersion::from_num(189_999).is_ok());
        let message = PgError::UnsupportedVersion(120_022).to_string();
        assert_eq!(
            message,
            "postgresql 12.22 is not supported: walg supports postgresql 13 to 18"
        );
    }

    #[test]
    fn version_texts() {
        assert_eq!(version_text(150_004), "15.4");
        assert_eq!(version_text(180_000), "18.0");
        assert_eq!(version_text(90_624), "9.6.24");
        assert_eq!(v(16).to_string(), "16.2");
    }
}
