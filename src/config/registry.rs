//! The table of every setting walg accepts: name, aliases, type, default, what it does.
//!
//! Seeded from WAL-G's `internal/config/config.go` (allowed settings, defaults) and its S3
//! storage settings. `docs/settings.md` is rendered from this table (a test keeps them equal).

/// How a value is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    /// Never printed: shown as `[redacted]` in logs and errors.
    Secret,
    Path,
    /// Go `strconv.ParseBool` spellings.
    Bool,
    /// A whole number at least this large.
    Int(i64),
    /// Go duration syntax (`30s`, `1m30s`) or a whole number of seconds.
    Duration,
    /// One of these words.
    Choice(&'static [&'static str]),
}

/// What walg does with a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Read and honoured.
    Used,
    /// Accepted for compatibility with WAL-G configurations; has no effect in walg (a warning
    /// says so when it is set).
    Ignored,
    /// Setting it is an error: honouring it is not possible in walg and ignoring it would be
    /// unsafe (for example an encryption key: walg must not write unencrypted data instead).
    Refused,
}

/// Which part of the documentation a setting belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    Storage,
    S3,
    Core,
    Wal,
    Postgres,
    Logging,
    Schedule,
    Encryption,
    Other,
}

impl Group {
    pub fn title(self) -> &'static str {
        match self {
            Group::Storage => "Storage",
            Group::S3 => "S3",
            Group::Core => "Compression and concurrency",
            Group::Wal => "WAL archiving",
            Group::Postgres => "PostgreSQL connection",
            Group::Logging => "Logging",
            Group::Encryption => "Encryption",
            Group::Schedule => "Scheduled backups (walg schedule)",
            Group::Other => "Accepted for WAL-G compatibility",
        }
    }
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    /// The canonical name (an environment variable and a config file key).
    pub name: &'static str,
    /// Other spellings, looked up after `name`, in order.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub support: Support,
    pub group: Group,
    pub doc: &'static str,
}

const fn def(
    name: &'static str,
    aliases: &'static [&'static str],
    kind: Kind,
    default: Option<&'static str>,
    group: Group,
    doc: &'static str,
) -> SettingDef {
    SettingDef {
        name,
        aliases,
        kind,
        default,
        support: Support::Used,
        group,
        doc,
    }
}

const fn ignored(
    name: &'static str,
    aliases: &'static [&'static str],
    doc: &'static str,
) -> SettingDef {
    SettingDef {
        name,
        aliases,
        kind: Kind::Str,
        default: None,
        support: Support::Ignored,
        group: Group::Other,
        doc,
    }
}

const fn refused(
    name: &'static str,
    aliases: &'static [&'static str],
    group: Group,
    doc: &'static str,
) -> SettingDef {
    SettingDef {
        name,
        aliases,
        kind: Kind::Secret,
        default: None,
        support: Support::Refused,
        group,
        doc,
    }
}

use Group::{Core, Encryption, Logging, Postgres, S3, Schedule, Storage, Wal};
use Kind::{Bool, Choice, Duration, Int, Path, Secret, Str};

/// Every setting, in documentation order.
pub static SETTINGS: &[SettingDef] = &[
    // Storage.
    def(
        "WALG_S3_PREFIX",
        &["WALE_S3_PREFIX"],
        Str,
        None,
        Storage,
        "Store in S3 or an S3-compatible store: `s3://bucket/path`.",
    ),
    def(
        "WALG_FILE_PREFIX",
        &["WALE_FILE_PREFIX"],
        Path,
        None,
        Storage,
        "Store in a local folder (a leading `file://localhost` is stripped).",
    ),
    def(
        "WALG_STORAGE_PREFIX",
        &[],
        Str,
        None,
        Storage,
        "An extra sub-folder below the storage prefix.",
    ),
    refused(
        "WALG_GS_PREFIX",
        &["WALE_GS_PREFIX"],
        Storage,
        "Google Cloud Storage: not supported by walg.",
    ),
    refused(
        "WALG_AZ_PREFIX",
        &["WALE_AZ_PREFIX"],
        Storage,
        "Azure Blob Storage: not supported by walg.",
    ),
    refused(
        "WALG_SWIFT_PREFIX",
        &["WALE_SWIFT_PREFIX"],
        Storage,
        "OpenStack Swift: not supported by walg.",
    ),
    refused(
        "WALG_SSH_PREFIX",
        &[],
        Storage,
        "SSH storage: not supported by walg.",
    ),
    refused(
        "WALG_OSS_PREFIX",
        &[],
        Storage,
        "Alibaba OSS: not supported by walg.",
    ),
    // S3.
    def(
        "AWS_REGION",
        &["WALG_AWS_REGION", "WALE_AWS_REGION", "AWS_DEFAULT_REGION"],
        Str,
        None,
        S3,
        "Region of the bucket. Unset: `us-east-1` with a custom endpoint, otherwise asked from the bucket.",
    ),
    def(
        "AWS_ENDPOINT",
        &["WALG_AWS_ENDPOINT", "WALE_AWS_ENDPOINT"],
        Str,
        None,
        S3,
        "Custom endpoint URL of an S3-compatible store, e.g. `http://minio:9000`.",
    ),
    def(
        "AWS_S3_FORCE_PATH_STYLE",
        &[
            "WALG_AWS_S3_FORCE_PATH_STYLE",
            "WALE_AWS_S3_FORCE_PATH_STYLE",
        ],
        Bool,
        Some("false"),
        S3,
        "Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts.",
    ),
    def(
        "AWS_ACCESS_KEY_ID",
        &[
            "WALG_AWS_ACCESS_KEY_ID",
            "WALE_AWS_ACCESS_KEY_ID",
            "AWS_ACCESS_KEY",
        ],
        Secret,
        None,
        S3,
        "Static access key; used first when the secret key is set too.",
    ),
    def(
        "AWS_SECRET_ACCESS_KEY",
        &[
            "WALG_AWS_SECRET_ACCESS_KEY",
            "WALE_AWS_SECRET_ACCESS_KEY",
            "AWS_SECRET_KEY",
        ],
        Secret,
        None,
        S3,
        "Static secret key.",
    ),
    def(
        "AWS_SESSION_TOKEN",
        &["WALG_AWS_SESSION_TOKEN", "WALE_AWS_SESSION_TOKEN"],
        Secret,
        None,
        S3,
        "Session token that goes with temporary static keys.",
    ),
    def(
        "AWS_SHARED_CREDENTIALS_FILE",
        &[],
        Path,
        None,
        S3,
        "Shared credentials file (default `~/.aws/credentials`), e.g. a Kubernetes Secret mounted as a file.",
    ),
    def(
        "AWS_CONFIG_FILE",
        &[],
        Path,
        None,
        S3,
        "AWS config file (default `~/.aws/config`).",
    ),
    def(
        "AWS_PROFILE",
        &[],
        Str,
        None,
        S3,
        "Profile to read from the credentials and config files (default `default`). When set, the profile is the only source of credentials: a profile missing from the files is an error.",
    ),
    def(
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        &[],
        Path,
        None,
        S3,
        "Web identity token (EKS IRSA, OIDC); used with `AWS_ROLE_ARN`.",
    ),
    def(
        "AWS_ROLE_ARN",
        &[],
        Str,
        None,
        S3,
        "Role to assume with the web identity token.",
    ),
    def(
        "AWS_ROLE_SESSION_NAME",
        &[],
        Str,
        None,
        S3,
        "Session name for the assumed role.",
    ),
    def(
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        &[],
        Str,
        None,
        S3,
        "ECS task role credentials endpoint.",
    ),
    def(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        &[],
        Str,
        None,
        S3,
        "Container credentials endpoint (full URI).",
    ),
    def(
        "AWS_EC2_METADATA_DISABLED",
        &[],
        Bool,
        Some("false"),
        S3,
        "Never ask the EC2 instance metadata service for credentials.",
    ),
    def(
        "S3_STORAGE_CLASS",
        &["WALG_S3_STORAGE_CLASS", "WALE_S3_STORAGE_CLASS"],
        Str,
        Some("STANDARD"),
        S3,
        "Storage class of uploaded objects.",
    ),
    def(
        "S3_SSE",
        &["WALG_S3_SSE", "WALE_S3_SSE"],
        Choice(&["AES256", "aws:kms"]),
        None,
        S3,
        "Server-side encryption: `AES256` or `aws:kms`.",
    ),
    def(
        "S3_SSE_KMS_ID",
        &["WALG_S3_SSE_KMS_ID", "WALE_S3_SSE_KMS_ID"],
        Str,
        None,
        S3,
        "KMS key id for `S3_SSE=aws:kms`.",
    ),
    def(
        "S3_CA_CERT_FILE",
        &[
            "WALG_S3_CA_CERT_FILE",
            "WALE_S3_CA_CERT_FILE",
            "AWS_CA_BUNDLE",
        ],
        Path,
        None,
        S3,
        "Extra CA certificates (PEM) to trust for the endpoint.",
    ),
    def(
        "S3_MAX_PART_SIZE",
        &["WALG_S3_MAX_PART_SIZE", "WALE_S3_MAX_PART_SIZE"],
        Int(5 * 1024 * 1024),
        Some("20971520"),
        S3,
        "Multipart upload part size in bytes (at least 5 MiB).",
    ),
    def(
        "S3_MAX_RETRIES",
        &["WALG_S3_MAX_RETRIES", "WALE_S3_MAX_RETRIES"],
        Int(0),
        Some("8"),
        S3,
        "Retries of a failed request, with jittered exponential backoff up to 5 s (WAL-G's default is 15).",
    ),
    def(
        "S3_REQUEST_TIMEOUT",
        &["WALG_S3_REQUEST_TIMEOUT"],
        Duration,
        Some("30s"),
        S3,
        "Deadline of one request attempt, and the longest a download may stall (walg only).",
    ),
    def(
        "S3_CONNECT_TIMEOUT",
        &["WALG_S3_CONNECT_TIMEOUT"],
        Duration,
        Some("5s"),
        S3,
        "Deadline to open a connection (walg only).",
    ),
    def(
        "S3_DELETE_BATCH_SIZE",
        &["WALG_S3_DELETE_BATCH_SIZE"],
        Int(1),
        Some("1000"),
        S3,
        "Keys per DeleteObjects call.",
    ),
    refused(
        "S3_SSE_C",
        &["WALG_S3_SSE_C"],
        S3,
        "SSE-C customer keys: not supported by walg.",
    ),
    // Compression and concurrency.
    def(
        "WALG_COMPRESSION_METHOD",
        &[],
        Choice(&["lz4", "lzma", "zstd", "brotli", "none"]),
        Some("lz4"),
        Core,
        "Compression of WAL and backup data.",
    ),
    def(
        "WALG_ZSTD_LEVEL",
        &[],
        Choice(&["fastest", "default", "better", "best"]),
        None,
        Core,
        "zstd speed/ratio trade-off; only with `WALG_COMPRESSION_METHOD=zstd`.",
    ),
    def(
        "WALG_UPLOAD_CONCURRENCY",
        &[],
        Int(1),
        Some("16"),
        Core,
        "Parallel uploads: multipart parts in flight; background WAL uploads are this minus one.",
    ),
    def(
        "WALG_DOWNLOAD_CONCURRENCY",
        &[],
        Int(1),
        Some("10"),
        Core,
        "Parallel downloads; the number of WAL segments `wal-fetch` prefetches (1 disables prefetch).",
    ),
    def(
        "WALG_UPLOAD_DISK_CONCURRENCY",
        &[],
        Int(1),
        Some("1"),
        Core,
        "Parallel readers of the data directory.",
    ),
    def(
        "WALG_UPLOAD_QUEUE",
        &[],
        Int(1),
        Some("2"),
        Core,
        "Closed tar parts allowed to wait for upload.",
    ),
    def(
        "WALG_TAR_SIZE_THRESHOLD",
        &[],
        Int(1),
        Some("1073741823"),
        Core,
        "Size at which a tar part is closed.",
    ),
    def(
        "WALG_TAR_DISABLE_FSYNC",
        &[],
        Bool,
        Some("false"),
        Core,
        "Skip fsync of restored files.",
    ),
    def(
        "WALG_DOWNLOAD_FILE_RETRIES",
        &[],
        Int(0),
        Some("15"),
        S3,
        "Times one S3 download broken mid-body is resumed (a ranged GET from the byte reached, checked to be the same object); each resume request is retried up to `S3_MAX_RETRIES` times.",
    ),
    def(
        "WALG_SENTINEL_USER_DATA",
        &[],
        Str,
        None,
        Core,
        "JSON stored in the backup sentinel as `UserData`.",
    ),
    def(
        "WALG_STOP_BACKUP_TIMEOUT",
        &[],
        Duration,
        Some("10m"),
        Core,
        "Longest backup-push waits, after stopping the backup, for its last WAL segment to be archived (WAL-G: no limit).",
    ),
    // WAL archiving.
    def(
        "WALG_PREVENT_WAL_OVERWRITE",
        &[],
        Bool,
        Some("false"),
        Wal,
        "Refuse to overwrite an archived WAL file whose content differs (`.history` files are always protected).",
    ),
    def(
        "TOTAL_BG_UPLOADED_LIMIT",
        &["WALG_TOTAL_BG_UPLOADED_LIMIT"],
        Int(0),
        Some("32"),
        Wal,
        "Most files one `wal-push` uploads in the background from `archive_status/*.ready`, plus one.",
    ),
    def(
        "PG_READY_RENAME",
        &["WALG_PG_READY_RENAME"],
        Bool,
        Some("false"),
        Wal,
        "Rename `.ready` to `.done` after a background upload (WAL-G's option; PostgreSQL normally does it).",
    ),
    def(
        "WALG_PREFETCH_DIR",
        &[],
        Path,
        None,
        Wal,
        "Folder for prefetched WAL (default: `.wal-g/prefetch` next to the destination).",
    ),
    def(
        "WALG_PG_WAL_SIZE",
        &[],
        Int(1),
        Some("16"),
        Wal,
        "WAL segment size in MiB.",
    ),
    // PostgreSQL connection.
    def(
        "PGDATA",
        &[],
        Path,
        None,
        Postgres,
        "Data directory of the cluster.",
    ),
    def(
        "PGHOST",
        &[],
        Str,
        None,
        Postgres,
        "Host or unix socket directory.",
    ),
    def("PGPORT", &[], Int(1), None, Postgres, "Port."),
    def("PGUSER", &[], Str, None, Postgres, "User name."),
    def("PGPASSWORD", &[], Secret, None, Postgres, "Password."),
    def("PGPASSFILE", &[], Path, None, Postgres, "Password file."),
    def(
        "PGDATABASE",
        &[],
        Str,
        None,
        Postgres,
        "Database to connect to.",
    ),
    def(
        "PGCONNECT_TIMEOUT",
        &[],
        Int(0),
        None,
        Postgres,
        "Seconds to wait for a connection to one host; unset or `0`: 10 (walg never waits forever).",
    ),
    def(
        "PGSSLMODE",
        &[],
        Str,
        None,
        Postgres,
        "TLS to TCP hosts, as libpq: `disable`, `allow`, `prefer` (default), `require`, `verify-ca` (check the server certificate's chain), `verify-full` (and its host name). Unix sockets never use TLS.",
    ),
    def(
        "PGSSLCERT",
        &[],
        Path,
        None,
        Postgres,
        "Client certificate (PEM), sent when the file exists; default `~/.postgresql/postgresql.crt`.",
    ),
    def(
        "PGSSLKEY",
        &[],
        Path,
        None,
        Postgres,
        "Key of the client certificate (PEM, unencrypted); default `~/.postgresql/postgresql.key`.",
    ),
    def(
        "PGSSLROOTCERT",
        &[],
        Path,
        None,
        Postgres,
        "CA certificates (PEM) that the server certificate must chain to; default `~/.postgresql/root.crt`, which when present is checked under every mode, as libpq does. `system`: the system's roots (needs `verify-full`).",
    ),
    def(
        "PGAPPNAME",
        &[],
        Str,
        Some("wal-g"),
        Postgres,
        "application_name of walg's sessions.",
    ),
    // Logging.
    def(
        "WALG_LOG_LEVEL",
        &[],
        Choice(&["NORMAL", "DEVEL", "ERROR"]),
        Some("NORMAL"),
        Logging,
        "`NORMAL`: info and above; `DEVEL`: adds debug lines and the logs of the libraries (AWS SDK, HTTP); `ERROR`: errors only. Credentials and key ids are never logged.",
    ),
    def(
        "WALG_LOG_DESTINATION",
        &[],
        Str,
        Some("stderr"),
        Logging,
        "`stderr` or a file to append log lines to.",
    ),
    def(
        "WALG_LOG_FORMAT",
        &[],
        Choice(&["text", "json"]),
        Some("text"),
        Logging,
        "`text`: WAL-G's `INFO: <time> <message>` lines; `json`: one JSON object per line (walg only).",
    ),
    def(
        "WALG_BACKUP_SCHEDULE",
        &[],
        Str,
        None,
        Schedule,
        "Cron expression of `walg schedule` (`--cron`): 5 fields, `@daily`-style macros, or 6 with seconds first.",
    ),
    def(
        "WALG_BACKUP_RETAIN",
        &[],
        Int(1),
        None,
        Schedule,
        "Full backups `walg schedule` keeps (`--retain`): after each successful backup, `delete retain FULL N --confirm`.",
    ),
    def(
        "WALG_METRICS_ADDR",
        &[],
        Str,
        None,
        Schedule,
        "Address of the `/metrics` and `/healthz` endpoint of `walg schedule` (`--metrics-addr`), e.g. `0.0.0.0:9351`; off when unset.",
    ),
    def(
        "TZ",
        &[],
        Str,
        None,
        Schedule,
        "Time zone of the schedule (an IANA name such as `Europe/Berlin`); UTC when unset.",
    ),
    // Encryption: walg refuses rather than write unencrypted data for someone who asked for it.
    refused(
        "WALG_LIBSODIUM_KEY",
        &[],
        Encryption,
        "libsodium encryption key: not supported by walg yet.",
    ),
    refused(
        "WALG_LIBSODIUM_KEY_PATH",
        &[],
        Encryption,
        "libsodium key file: not supported by walg yet.",
    ),
    refused(
        "WALG_PGP_KEY",
        &[],
        Encryption,
        "OpenPGP key: not supported by walg yet.",
    ),
    refused(
        "WALG_PGP_KEY_PATH",
        &[],
        Encryption,
        "OpenPGP key file: not supported by walg yet.",
    ),
    refused(
        "WALG_GPG_KEY_ID",
        &["WALE_GPG_KEY_ID", "GPG_KEY_ID"],
        Encryption,
        "External GnuPG: not supported by walg.",
    ),
    refused(
        "WALG_ENVELOPE_PGP_KEY",
        &[],
        Encryption,
        "Envelope encryption: not supported by walg.",
    ),
    refused(
        "WALG_ENVELOPE_PGP_KEY_PATH",
        &[],
        Encryption,
        "Envelope encryption: not supported by walg.",
    ),
    refused(
        "WALG_CSE_KMS_ID",
        &[],
        Encryption,
        "Client-side KMS encryption: not supported by walg.",
    ),
    refused(
        "YC_CSE_KMS_KEY_ID",
        &[],
        Encryption,
        "Yandex Cloud KMS encryption: not supported by walg.",
    ),
    // Accepted, without effect.
    ignored(
        "WALG_LIBSODIUM_KEY_TRANSFORM",
        &[],
        "libsodium key transform.",
    ),
    ignored("WALG_PGP_KEY_PASSPHRASE", &[], "OpenPGP key passphrase."),
    ignored("WALG_CSE_KMS_REGION", &[], "KMS region."),
    ignored(
        "WALG_UPLOAD_WAL_METADATA",
        &[],
        "WAL metadata objects (walg writes none).",
    ),
    ignored("WALG_DELTA_MAX_STEPS", &[], "Delta backups."),
    ignored("WALG_DELTA_ORIGIN", &[], "Delta backups."),
    ignored("WALG_DELTA_FROM_NAME", &[], "Delta backups."),
    ignored("WALG_DELTA_FROM_USER_DATA", &[], "Delta backups."),
    ignored("WALG_USE_WAL_DELTA", &[], "WAL-delta files."),
    ignored("WALG_FORCE_WAL_DELTA", &[], "WAL-delta files."),
    ignored(
        "WALG_FETCH_TARGET_USER_DATA",
        &[],
        "Backup selection by user data.",
    ),
    ignored("WALG_USE_REVERSE_UNPACK", &[], "Restore order."),
    ignored("WALG_SKIP_REDUNDANT_TARS", &[], "Restore order."),
    ignored(
        "WALG_VERIFY_PAGE_CHECKSUMS",
        &[],
        "Page checksum verification.",
    ),
    ignored(
        "WALG_STORE_ALL_CORRUPT_BLOCKS",
        &[],
        "Page checksum verification.",
    ),
    ignored("WALG_USE_RATING_COMPOSER", &[], "Tar composers."),
    ignored("WALG_USE_COPY_COMPOSER", &[], "Tar composers."),
    ignored("WALG_USE_DATABASE_COMPOSER", &[], "Tar composers."),
    ignored("WALG_WITHOUT_FILES_METADATA", &[], "files_metadata.json."),
    ignored("WALG_DISABLE_PARTIAL_RESTORE", &[], "Partial restore."),
    ignored("WALG_PG_WAL_PAGE_SIZE", &[], "WAL parser page size."),
    ignored("WALG_PG_BLOCK_SIZE", &[], "Relation page size."),
    ignored("WALG_ALIVE_CHECK_INTERVAL", &[], "Backup liveness check."),
    ignored("WALG_DISK_RATE_LIMIT", &[], "Disk rate limit."),
    ignored("WALG_NETWORK_RATE_LIMIT", &[], "Network rate limit."),
    ignored("WALG_INTEGRITY_MAX_DELAYED_WALS", &[], "wal-verify."),
    ignored("WALG_SLOTNAME", &[], "wal-receive."),
    ignored("WALG_DAEMON_WAL_UPLOAD_TIMEOUT", &[], "daemon mode."),
    ignored("WALG_DIRECT_IO", &[], "O_DIRECT reads."),
    ignored("WALG_TARGET_STORAGE", &[], "Failover storages."),
    ignored("WALG_FAILOVER_STORAGES", &[], "Failover storages."),
    ignored("WALG_FAILOVER_STORAGES_CHECK", &[], "Failover storages."),
    ignored(
        "WALG_FAILOVER_STORAGES_CHECK_TIMEOUT",
        &[],
        "Failover storages.",
    ),
    ignored(
        "WALG_FAILOVER_STORAGES_CACHE_LIFETIME",
        &[],
        "Failover storages.",
    ),
    ignored(
        "WALG_FAILOVER_STORAGES_CHECK_SIZE",
        &[],
        "Failover storages.",
    ),
    ignored("WALG_STATSD_ADDRESS", &[], "StatsD metrics."),
    ignored("WALG_STATSD_EXTRA_TAGS", &[], "StatsD metrics."),
    ignored("WALG_SERIALIZER_TYPE", &[], "Serializer."),
    ignored("WALG_STREAM_CREATE_COMMAND", &[], "Stream backups."),
    ignored("WALG_STREAM_RESTORE_COMMAND", &[], "Stream backups."),
    ignored(
        "S3_USE_LIST_OBJECTS_V1",
        &["WALG_S3_USE_LIST_OBJECTS_V1"],
        "ListObjects V1.",
    ),
    ignored(
        "S3_RANGE_BATCH_ENABLED",
        &["WALG_S3_RANGE_BATCH_ENABLED"],
        "Ranged downloads.",
    ),
    ignored(
        "S3_RANGE_MAX_RETRIES",
        &["WALG_S3_RANGE_MAX_RETRIES"],
        "Ranged downloads.",
    ),
    ignored("S3_LOG_LEVEL", &["WALG_S3_LOG_LEVEL"], "SDK logging."),
    ignored(
        "S3_ENDPOINT_SOURCE",
        &["WALG_S3_ENDPOINT_SOURCE"],
        "Endpoint discovery.",
    ),
    ignored(
        "S3_ENDPOINT_PORT",
        &["WALG_S3_ENDPOINT_PORT"],
        "Endpoint discovery.",
    ),
    ignored(
        "S3_SKIP_VALIDATION",
        &["WALG_S3_SKIP_VALIDATION"],
        "Start-up bucket check.",
    ),
    ignored("AWS_ROLE_ARN_ASSUME", &[], "Unused."),
    ignored("AWS_DEFAULT_OUTPUT", &[], "AWS CLI output format."),
    ignored("PGBACKREST_STANZA", &[], "pgBackRest stanza."),
    ignored("HTTP_LISTEN", &[], "Debug web server."),
    ignored("HTTP_EXPOSE_PPROF", &[], "Debug web server."),
    ignored("HTTP_EXPOSE_EXPVAR", &[], "Debug web server."),
    ignored("PROFILE_SAMPLING_RATIO", &[], "Go profiling."),
    ignored("PROFILE_MODE", &[], "Go profiling."),
    ignored("PROFILE_PATH", &[], "Go profiling."),
    ignored("GOMAXPROCS", &[], "Go runtime."),
    ignored("GODEBUG", &[], "Go runtime."),
];

/// Finds a setting by its name or one of its aliases (case-insensitive, as viper keys are).
pub fn find(name: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|d| {
        d.name.eq_ignore_ascii_case(name) || d.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The hidden command-line flag of a setting name: lower case, `_` → `-` (`--walg-s3-prefix`).
pub fn flag_name(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Renders the table as Markdown, for `docs/settings.md`.
pub fn render_markdown() -> String {
    let mut out = String::from(
        "# Settings\n\n\
         Generated from `src/config/registry.rs`; `cargo test` fails when this file is out of date \
         (regenerate with `WALG_WRITE_DOCS=1 cargo test --lib config::registry`).\n\n\
         Every setting can be given, from highest precedence to lowest, as a hidden command-line \
         flag (the name in lower case with `-` for `_`, e.g. `--walg-s3-prefix`), an environment \
         variable, or a key of the JSON config file (`--config FILE`, else `WALG_CONFIG_PATH`, else \
         `$HOME/.walg.json`). An empty environment variable counts as unset. Aliases are looked up \
         after the name, in the order shown.\n",
    );
    let mut groups: Vec<Group> = SETTINGS.iter().map(|d| d.group).collect();
    groups.sort();
    groups.dedup();
    for group in groups {
        out.push_str(&format!(
            "\n## {}\n\n| setting | aliases | type | default | meaning |\n|---|---|---|---|---|\n",
            group.title()
        ));
        for d in SETTINGS.iter().filter(|d| d.group == group) {
            let aliases = d
                .aliases
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let kind = match d.kind {
                Kind::Str => "string".to_string(),
                Kind::Secret => "secret".to_string(),
                Kind::Path => "path".to_string(),
                Kind::Bool => "boolean".to_string(),
                Kind::Int(min) => format!("integer ≥ {min}"),
                Kind::Duration => "duration".to_string(),
                Kind::Choice(words) => words
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(" "),
            };
            let default = d.default.map(|v| format!("`{v}`")).unwrap_or_default();
            let note = match d.support {
                Support::Used => "",
                Support::Ignored => " *Accepted; no effect in walg.*",
                Support::Refused => " *Setting it is an error.*",
            };
            out.push_str(&format!(
                "| `{}` | {aliases} | {kind} | {default} | {}{note} |\n",
                d.name, d.doc
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut all: Vec<&str> = SETTINGS
            .iter()
            .flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied()))
            .collect();
        let before = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(before, all.len(), "a setting name or alias appears twice");
    }

    #[test]
    fn defaults_parse_as_their_kind() {
        for d in SETTINGS {
            if let Some(default) = d.default {
                assert!(
                    super::super::parse::check(d.kind, default).is_ok(),
                    "default of {} does not parse: {default}",
                    d.name
                );
            }
        }
    }

    #[test]
    fn find_by_alias_and_case() {
        assert_eq!(
            find("wale_s3_prefix").map(|d| d.name),
            Some("WALG_S3_PREFIX")
        );
        assert_eq!(
            find("AWS_SECRET_KEY").map(|d| d.name),
            Some("AWS_SECRET_ACCESS_KEY")
        );
        assert!(find("WALG_NO_SUCH").is_none());
        assert_eq!(flag_name("WALG_S3_PREFIX"), "walg-s3-prefix");
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the knob that rewrites the doc, for developers
    fn docs_are_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/settings.md");
        let rendered = render_markdown();
        if std::env::var_os("WALG_WRITE_DOCS").is_some() {
            std::fs::write(&path, &rendered).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/settings.md is out of date: run WALG_WRITE_DOCS=1 cargo test --lib config::registry"
        );
    }
}
