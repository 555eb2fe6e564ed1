//! Settings: raw values from flags, environment and config file become one typed [`Settings`],
//! once, at start-up. Nothing below this module reads the environment.

pub mod parse;
pub mod registry;
pub mod sources;

use std::path::PathBuf;
use std::time::Duration;

use crate::compression::{CompressionSettings, Method, ZstdLevel};
use crate::pg::ConnectSettings;
use crate::pg::tls::TlsFiles;
use crate::storage::StorageSettings;
use crate::storage::fs::FsSettings;
use crate::storage::s3::{S3Credentials, S3Settings};
use crate::util::secret::Secret;
use registry::{Kind, SettingDef, Support};
pub use sources::{RawConfig, RawValue, Source};

/// A setting with a value that cannot be used. Displays as one line naming the setting and
/// where the value came from; secrets are never shown.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}{shown} (from {origin}): {reason}")]
pub struct ConfigError {
    pub name: String,
    shown: String,
    pub origin: Source,
    pub reason: String,
}

impl ConfigError {
    fn new(def: &SettingDef, raw: &RawValue, reason: impl Into<String>) -> Self {
        let shown = if def.kind == Kind::Secret {
            String::new()
        } else {
            format!(" value '{}'", raw.value)
        };
        ConfigError {
            name: raw.name.to_string(),
            shown,
            origin: raw.source.clone(),
            reason: reason.into(),
        }
    }
}

/// Log verbosity, `WALG_LOG_LEVEL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Info, warnings and errors.
    Normal,
    /// Adds debug lines.
    Devel,
}

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LogLevel,
    /// `None`: standard error.
    pub destination: Option<PathBuf>,
    /// `WALG_LOG_FORMAT=json`: JSON lines instead of WAL-G's text lines.
    pub json: bool,
}

/// WAL archiving settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalSettings {
    pub prevent_overwrite: bool,
    /// `TOTAL_BG_UPLOADED_LIMIT`.
    pub total_bg_uploaded_limit: usize,
    pub ready_rename: bool,
    pub prefetch_dir: Option<PathBuf>,
    /// Bytes.
    pub segment_size: u64,
}

/// PostgreSQL settings: the data directory and the connection (libpq's variables), in the
/// type `pg` connects with.
#[derive(Debug, Clone, Default)]
pub struct PgSettings {
    /// `PGDATA`.
    pub data: Option<PathBuf>,
    pub connect: ConnectSettings,
}

/// Everything a command needs, typed and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `None` when no storage prefix is configured.
    pub storage: Option<StorageSettings>,
    pub compression: CompressionSettings,
    pub upload_concurrency: usize,
    pub download_concurrency: usize,
    pub wal: WalSettings,
    pub pg: PgSettings,
    pub log: LogSettings,
    pub backup: BackupSettings,
    pub schedule: ScheduleSettings,
    /// The config file that was read (handed on to child processes).
    pub config_file: Option<PathBuf>,
}

/// `walg schedule` settings; the command line may override each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduleSettings {
    /// `WALG_BACKUP_SCHEDULE`.
    pub cron: Option<String>,
    /// `WALG_BACKUP_RETAIN`.
    pub retain: Option<u32>,
    /// `WALG_METRICS_ADDR`.
    pub metrics_addr: Option<String>,
    /// `TZ`.
    pub tz: Option<String>,
}

/// Base backup settings.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupSettings {
    /// `WALG_TAR_SIZE_THRESHOLD`: a tar part is closed once its content exceeds this.
    pub tar_size_threshold: u64,
    /// `WALG_UPLOAD_DISK_CONCURRENCY`: tar parts built at once.
    pub upload_disk_concurrency: usize,
    /// `WALG_TAR_DISABLE_FSYNC`: skip fsync of restored files.
    pub disable_fsync: bool,
    /// `WALG_SENTINEL_USER_DATA`, parsed.
    pub user_data: Option<serde_json::Value>,
    /// `WALG_STOP_BACKUP_TIMEOUT`: the bounded wait for the last segment to be archived.
    pub archive_wait: Duration,
}

/// Typed access to one raw config, collecting the first error.
struct Resolver<'a> {
    raw: &'a RawConfig,
}

fn def(name: &str) -> Result<&'static SettingDef, ConfigError> {
    registry::find(name).ok_or_else(|| ConfigError {
        name: name.to_string(),
        shown: String::new(),
        origin: Source::Default,
        reason: "not in the settings table".to_string(),
    })
}

impl Resolver<'_> {
    fn raw(&self, name: &str) -> Result<Option<(&'static SettingDef, RawValue)>, ConfigError> {
        let d = def(name)?;
        Ok(self.raw.get(d).map(|v| (d, v)))
    }

    fn string(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.raw(name)? {
            Some((d, v)) => {
                parse::check(d.kind, &v.value).map_err(|reason| ConfigError::new(d, &v, reason))?;
                Ok(Some(v.value))
            }
            None => Ok(None),
        }
    }

    fn secret(&self, name: &str) -> Result<Option<Secret>, ConfigError> {
        Ok(self.string(name)?.map(|s| Secret::new(s.trim())))
    }

    fn path(&self, name: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(name)?.map(PathBuf::from))
    }

    fn bool(&self, name: &str) -> Result<bool, ConfigError> {
        match self.raw(name)? {
            Some((d, v)) => {
                parse::parse_bool(&v.value).map_err(|reason| ConfigError::new(d, &v, reason))
            }
            None => Ok(false),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, ConfigError> {
        match self.raw(name)? {
            Some((d, v)) => {
                let min = match d.kind {
                    Kind::Int(min) => min,
                    _ => i64::MIN,
                };
                parse::parse_int(&v.value, min)
                    .map(Some)
                    .map_err(|reason| ConfigError::new(d, &v, reason))
            }
            None => Ok(None),
        }
    }

    fn count(&self, name: &str) -> Result<usize, ConfigError> {
        Ok(self
            .int(name)?
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0))
    }

    fn duration(&self, name: &str) -> Result<Duration, ConfigError> {
        match self.raw(name)? {
            Some((d, v)) => {
                parse::parse_duration(&v.value).map_err(|reason| ConfigError::new(d, &v, reason))
            }
            None => Ok(Duration::ZERO),
        }
    }
}

impl Settings {
    /// Validates every setting and builds the typed settings.
    pub fn resolve(raw: &RawConfig) -> Result<Settings, ConfigError> {
        let r = Resolver { raw };
        refuse_unsupported(raw)?;
        let upload_concurrency = r.count("WALG_UPLOAD_CONCURRENCY")?.max(1);
        let compression = compression(&r)?;
        let storage = storage(&r, raw, upload_concurrency)?;
        let segment_size = wal_segment_size(&r)?;
        Ok(Settings {
            storage,
            compression,
            upload_concurrency,
            download_concurrency: r.count("WALG_DOWNLOAD_CONCURRENCY")?.max(1),
            wal: WalSettings {
                prevent_overwrite: r.bool("WALG_PREVENT_WAL_OVERWRITE")?,
                total_bg_uploaded_limit: r.count("TOTAL_BG_UPLOADED_LIMIT")?,
                ready_rename: r.bool("PG_READY_RENAME")?,
                prefetch_dir: r.path("WALG_PREFETCH_DIR")?,
                segment_size,
            },
            pg: pg_settings(&r, raw)?,
            log: log_settings(raw)?,
            backup: backup_settings(&r)?,
            schedule: ScheduleSettings {
                cron: r.string("WALG_BACKUP_SCHEDULE")?,
                retain: r
                    .int("WALG_BACKUP_RETAIN")?
                    .and_then(|n| u32::try_from(n).ok()),
                metrics_addr: r.string("WALG_METRICS_ADDR")?,
                tz: r.string("TZ")?,
            },
            config_file: raw.file_path().map(PathBuf::from),
        })
    }

    /// Settings that are accepted but have no effect, and are set: each gets a warning.
    pub fn ignored_but_set(raw: &RawConfig) -> Vec<&'static str> {
        registry::SETTINGS
            .iter()
            .filter(|d| d.support == Support::Ignored && d.default.is_none())
            .filter_map(|d| raw.get(d).map(|v| v.name))
            .collect()
    }
}

/// `PGDATA` and libpq's connection variables; `HOME` and `USER`/`LOGNAME` give the defaults
/// of the password file and the user.
fn pg_settings(r: &Resolver<'_>, raw: &RawConfig) -> Result<PgSettings, ConfigError> {
    Ok(PgSettings {
        data: r.path("PGDATA")?,
        connect: ConnectSettings {
            host: r.string("PGHOST")?,
            port: r.int("PGPORT")?.and_then(|p| u16::try_from(p).ok()),
            user: r.string("PGUSER")?,
            password: r.secret("PGPASSWORD")?,
            passfile: r.path("PGPASSFILE")?.or_else(|| {
                raw.env_var("HOME")
                    .map(|home| PathBuf::from(home).join(".pgpass"))
            }),
            database: r.string("PGDATABASE")?,
            sslmode: r.string("PGSSLMODE")?,
            tls: TlsFiles {
                root_cert: r.path("PGSSLROOTCERT")?,
                cert: r.path("PGSSLCERT")?,
                key: r.path("PGSSLKEY")?,
                default_dir: raw
                    .env_var("HOME")
                    .map(|home| PathBuf::from(home).join(".postgresql")),
            },
            application_name: r
                .string("PGAPPNAME")?
                .unwrap_or_else(|| "wal-g".to_string()),
            connect_timeout: r
                .int("PGCONNECT_TIMEOUT")?
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
            os_user: raw
                .env_var("USER")
                .or_else(|| raw.env_var("LOGNAME"))
                .map(str::to_string),
        },
    })
}

/// Reads only the logging settings: needed before everything else is resolved, so that
/// warnings and errors of the rest are logged as configured.
pub fn log_settings(raw: &RawConfig) -> Result<LogSettings, ConfigError> {
    let r = Resolver { raw };
    let level = match r.string("WALG_LOG_LEVEL")?.as_deref() {
        Some("DEVEL") => LogLevel::Devel,
        Some("ERROR") => LogLevel::Error,
        _ => LogLevel::Normal,
    };
    let destination = r
        .string("WALG_LOG_DESTINATION")?
        .filter(|d| d != "stderr")
        .map(PathBuf::from);
    let json = r.string("WALG_LOG_FORMAT")?.as_deref() == Some("json");
    Ok(LogSettings {
        level,
        destination,
        json,
    })
}

fn backup_settings(r: &Resolver<'_>) -> Result<BackupSettings, ConfigError> {
    let user_data = match r.raw("WALG_SENTINEL_USER_DATA")? {
        Some((d, v)) => Some(
            serde_json::from_str(&v.value)
                .map_err(|e| ConfigError::new(d, &v, format!("not valid JSON: {e}")))?,
        ),
        None => None,
    };
    Ok(BackupSettings {
        tar_size_threshold: u64::try_from(
            r.int("WALG_TAR_SIZE_THRESHOLD")?.unwrap_or(1_073_741_823),
        )
        .unwrap_or(1_073_741_823),
        upload_disk_concurrency: r.count("WALG_UPLOAD_DISK_CONCURRENCY")?.max(1),
        disable_fsync: r.bool("WALG_TAR_DISABLE_FSYNC")?,
        user_data,
        archive_wait: r.duration("WALG_STOP_BACKUP_TIMEOUT")?,
    })
}

fn refuse_unsupported(raw: &RawConfig) -> Result<(), ConfigError> {
    for d in registry::SETTINGS
        .iter()
        .filter(|d| d.support == Support::Refused)
    {
        if let Some(v) = raw.get(d) {
            let reason = if d.group == registry::Group::Encryption {
                "client-side encryption is not supported by walg yet, and walg will not store unencrypted data for a configuration that asks for encryption"
            } else {
                "this storage or option is not supported by walg"
            };
            return Err(ConfigError::new(d, &v, reason));
        }
    }
    Ok(())
}

/// `WALG_PG_WAL_SIZE` in bytes: what PostgreSQL allows (`initdb --wal-segsize`), a power of
/// two from 1 to 1024 MiB. Anything else names no real segment size (and a huge value would
/// overflow the byte count).
fn wal_segment_size(r: &Resolver<'_>) -> Result<u64, ConfigError> {
    const MIB: u64 = 1024 * 1024;
    let Some((d, v)) = r.raw("WALG_PG_WAL_SIZE")? else {
        return Ok(16 * MIB);
    };
    let mib = r.int("WALG_PG_WAL_SIZE")?.unwrap_or(16);
    match u64::try_from(mib) {
        Ok(mib) if mib.is_power_of_two() && mib <= 1024 => Ok(mib * MIB),
        _ => Err(ConfigError::new(
            d,
            &v,
            "expected a power of two from 1 to 1024 (MiB)",
        )),
    }
}

fn compression(r: &Resolver<'_>) -> Result<CompressionSettings, ConfigError> {
    let method = r
        .string("WALG_COMPRESSION_METHOD")?
        .and_then(|m| Method::parse(&m))
        .unwrap_or(Method::Lz4);
    let zstd_level = match r.raw("WALG_ZSTD_LEVEL")? {
        None => ZstdLevel::Default,
        Some((d, v)) => {
            if method != Method::Zstd {
                return Err(ConfigError::new(
                    d,
                    &v,
                    "only valid with WALG_COMPRESSION_METHOD=zstd",
                ));
            }
            match v.value.to_ascii_lowercase().as_str() {
                "fastest" => ZstdLevel::Fastest,
                "default" => ZstdLevel::Default,
                "better" => ZstdLevel::Better,
                "best" => ZstdLevel::Best,
                _ => {
                    return Err(ConfigError::new(
                        d,
                        &v,
                        "expected one of: fastest, default, better, best",
                    ));
                }
            }
        }
    };
    Ok(CompressionSettings { method, zstd_level })
}

fn storage(
    r: &Resolver<'_>,
    raw: &RawConfig,
    upload_concurrency: usize,
) -> Result<Option<StorageSettings>, ConfigError> {
    let sub = r.string("WALG_STORAGE_PREFIX")?.unwrap_or_default();
    let sub = sub.trim_matches('/');
    // WAL-G compat: the first configured storage type in WAL-G's order (S3 before FILE) wins.
    if let Some((d, v)) = r.raw("WALG_S3_PREFIX")? {
        let (bucket, path) =
            parse_s3_prefix(&v.value).map_err(|reason| ConfigError::new(d, &v, reason))?;
        let root = [path.as_str(), sub]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        return Ok(Some(StorageSettings::S3(Box::new(s3_settings(
            r,
            raw,
            bucket,
            root,
            upload_concurrency,
        )?))));
    }
    if let Some(prefix) = r.string("WALG_FILE_PREFIX")? {
        let prefix = prefix.strip_prefix("file://localhost").unwrap_or(&prefix);
        let mut root = PathBuf::from(prefix);
        if !sub.is_empty() {
            root.push(sub);
        }
        return Ok(Some(StorageSettings::Fs(FsSettings { root })));
    }
    Ok(None)
}

fn parse_s3_prefix(value: &str) -> Result<(String, String), String> {
    let rest = value
        .strip_prefix("s3://")
        .ok_or_else(|| "expected s3://bucket/path".to_string())?;
    let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err("the bucket name is missing (expected s3://bucket/path)".to_string());
    }
    Ok((bucket.to_string(), path.trim_matches('/').to_string()))
}

fn s3_settings(
    r: &Resolver<'_>,
    raw: &RawConfig,
    bucket: String,
    root: String,
    upload_concurrency: usize,
) -> Result<S3Settings, ConfigError> {
    let trimmed = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    Ok(S3Settings {
        bucket,
        root,
        region: trimmed(r.string("AWS_REGION")?),
        endpoint: trimmed(r.string("AWS_ENDPOINT")?),
        force_path_style: r.bool("AWS_S3_FORCE_PATH_STYLE")?,
        credentials: S3Credentials {
            access_key_id: trimmed(r.string("AWS_ACCESS_KEY_ID")?),
            secret_access_key: r.secret("AWS_SECRET_ACCESS_KEY")?,
            session_token: r.secret("AWS_SESSION_TOKEN")?,
            shared_credentials_file: r.path("AWS_SHARED_CREDENTIALS_FILE")?,
            config_file: r.path("AWS_CONFIG_FILE")?,
            profile: trimmed(r.string("AWS_PROFILE")?),
            web_identity_token_file: r.path("AWS_WEB_IDENTITY_TOKEN_FILE")?,
            role_arn: trimmed(r.string("AWS_ROLE_ARN")?),
            role_session_name: trimmed(r.string("AWS_ROLE_SESSION_NAME")?),
            container_credentials_relative_uri: trimmed(
                r.string("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")?,
            ),
            container_credentials_full_uri: trimmed(
                r.string("AWS_CONTAINER_CREDENTIALS_FULL_URI")?,
            ),
            ec2_metadata_disabled: r.bool("AWS_EC2_METADATA_DISABLED")?,
            home: raw.env_var("HOME").map(PathBuf::from),
        },
        storage_class: r
            .string("S3_STORAGE_CLASS")?
            .unwrap_or_else(|| "STANDARD".to_string()),
        sse: r.string("S3_SSE")?,
        sse_kms_id: r.string("S3_SSE_KMS_ID")?,
        ca_cert_file: r.path("S3_CA_CERT_FILE")?,
        max_part_size: r.count("S3_MAX_PART_SIZE")?,
        upload_concurrency,
        max_retries: u32::try_from(r.count("S3_MAX_RETRIES")?).unwrap_or(u32::MAX),
        download_retries: u32::try_from(r.count("WALG_DOWNLOAD_FILE_RETRIES")?).unwrap_or(u32::MAX),
        request_timeout: r.duration("S3_REQUEST_TIMEOUT")?,
        connect_timeout: r.duration("S3_CONNECT_TIMEOUT")?,
        delete_batch_size: r.count("S3_DELETE_BATCH_SIZE")?.max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn resolve(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::resolve(&RawConfig::load(BTreeMap::new(), env, None).unwrap())
    }

    #[test]
    fn defaults() {
        let s = resolve(&[("WALG_FILE_PREFIX", "/backups")]).unwrap();
        assert_eq!(s.compression.method, Method::Lz4);
        assert_eq!((s.upload_concurrency, s.download_concurrency), (16, 10));
        assert_eq!(s.wal.total_bg_uploaded_limit, 32);
        assert_eq!(s.wal.segment_size, 16 * 1024 * 1024);
        assert!(!s.wal.prevent_overwrite);
        assert!(
            matches!(s.storage, Some(StorageSettings::Fs(FsSettings { ref root })) if root == &PathBuf::from("/backups"))
        );
        assert!(resolve(&[]).unwrap().storage.is_none());
    }

    #[test]
    fn a_wal_size_is_a_power_of_two_up_to_1024_mib_and_never_overflows() {
        let size = |v: &str| resolve(&[("WALG_PG_WAL_SIZE", v)]).map(|s| s.wal.segment_size);
        assert_eq!(size("1").unwrap(), 1 << 20);
        assert_eq!(size("64").unwrap(), 64 << 20);
        assert_eq!(size("1024").unwrap(), 1 << 30);
        // 2^44 MiB is 2^64 bytes: the byte count used to overflow.
        for bad in [
            "17592186044416",
            "9223372036854775807",
            "2048",
            "3",
            "0",
            "-16",
        ] {
            let err = size(bad).unwrap_err().to_string();
            assert!(err.contains("WALG_PG_WAL_SIZE"), "{bad}: {err}");
        }
    }

    #[test]
    fn s3_prefix_and_sub_folder() {
        let s = resolve(&[
            ("WALG_S3_PREFIX", "s3://bucket/pg/main/"),
            ("WALG_STORAGE_PREFIX", "/extra/"),
            ("AWS_REGION", "us-east-2"),
            ("AWS_SECRET_ACCESS_KEY", " secret \n"),
        ])
        .unwrap();
        let Some(StorageSettings::S3(s3)) = s.storage else {
            panic!("not s3")
        };
        assert_eq!(
            (s3.bucket.as_str(), s3.root.as_str()),
            ("bucket", "pg/main/extra")
        );
        assert_eq!(s3.region.as_deref(), Some("us-east-2"));
        assert_eq!(
            s3.credentials
                .secret_access_key
                .as_ref()
                .map(Secret::expose),
            Some("secret")
        );
        assert_eq!(
            (s3.max_part_size, s3.max_retries, s3.delete_batch_size),
            (20 * 1024 * 1024, 8, 1000)
        );
        assert_eq!(s3.request_timeout, Duration::from_secs(30));
        let Some(StorageSettings::S3(bare)) =
            resolve(&[("WALG_S3_PREFIX", "s3://b")]).unwrap().storage
        else {
            panic!("not s3")
        };
        assert_eq!((bare.bucket.as_str(), bare.root.as_str()), ("b", ""));
    }

    #[test]
    fn file_prefix_strips_wale_scheme() {
        let s = resolve(&[("WALE_FILE_PREFIX", "file://localhost/var/backups")]).unwrap();
        assert!(
            matches!(s.storage, Some(StorageSettings::Fs(FsSettings { ref root })) if root == &PathBuf::from("/var/backups"))
        );
    }

    #[test]
    fn errors_name_setting_and_source() {
        let err = resolve(&[("WALG_UPLOAD_CONCURRENCY", "abc")])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid WALG_UPLOAD_CONCURRENCY value 'abc' (from environment): not a whole number"
        );
        let err = resolve(&[("WALG_COMPRESSION_METHOD", "gzip")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WALG_COMPRESSION_METHOD") && err.contains("expected one of"),
            "{err}"
        );
        let err = resolve(&[("WALG_S3_PREFIX", "bucket/path")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3://bucket/path"), "{err}");
        let err = resolve(&[("WALG_ZSTD_LEVEL", "best")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("only valid with"), "{err}");
        assert!(resolve(&[("WALG_UPLOAD_CONCURRENCY", "0")]).is_err());
    }

    #[test]
    fn secrets_never_shown_in_errors() {
        let err = resolve(&[("WALG_LIBSODIUM_KEY", "topsecretkey")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("WALG_LIBSODIUM_KEY") && !err.contains("topsecretkey"),
            "{err}"
        );
        assert!(err.contains("encryption"), "{err}");
    }

    #[test]
    fn postgres_connection_defaults() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.pg.connect.os_user, None);
        assert_eq!(s.pg.connect.passfile, None);
        assert_eq!(s.pg.connect.connect_timeout, None);
        assert_eq!(s.pg.connect.application_name, "wal-g");
        let s = resolve(&[
            ("USER", "alice"),
            ("LOGNAME", "bob"),
            ("HOME", "/home/alice"),
            ("PGCONNECT_TIMEOUT", "7"),
        ])
        .unwrap();
        assert_eq!(s.pg.connect.os_user.as_deref(), Some("alice"));
        assert_eq!(
            s.pg.connect.passfile,
            Some(PathBuf::from("/home/alice/.pgpass"))
        );
        assert_eq!(s.pg.connect.connect_timeout, Some(Duration::from_secs(7)));
        let s = resolve(&[
            ("LOGNAME", "bob"),
            ("HOME", "/home/alice"),
            ("PGPASSFILE", "/etc/walg/pgpass"),
            ("PGCONNECT_TIMEOUT", "0"),
        ])
        .unwrap();
        assert_eq!(s.pg.connect.os_user.as_deref(), Some("bob"));
        assert_eq!(
            s.pg.connect.passfile,
            Some(PathBuf::from("/etc/walg/pgpass"))
        );
        assert_eq!(s.pg.connect.connect_timeout, None);
        assert!(resolve(&[("PGCONNECT_TIMEOUT", "-1")]).is_err());
    }

    #[test]
    fn backup_settings() {
        let s = resolve(&[]).unwrap();
        assert_eq!(s.backup.tar_size_threshold, 1_073_741_823);
        assert_eq!(s.backup.archive_wait, Duration::from_secs(600));
        assert!(s.backup.user_data.is_none());
        let s = resolve(&[("WALG_SENTINEL_USER_DATA", r#"{"a": [1]}"#)]).unwrap();
        assert_eq!(s.backup.user_data, Some(serde_json::json!({"a": [1]})));
        let err = resolve(&[("WALG_SENTINEL_USER_DATA", "{oops")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid JSON"), "{err}");
    }

    #[test]
    fn log_levels() {
        assert_eq!(
            resolve(&[("WALG_LOG_LEVEL", "DEVEL")]).unwrap().log.level,
            LogLevel::Devel
        );
        assert_eq!(resolve(&[]).unwrap().log.level, LogLevel::Normal);
        assert!(resolve(&[("WALG_LOG_LEVEL", "LOUD")]).is_err());
    }

    #[test]
    fn every_setting_resolves_from_a_valid_value() {
        // A valid value for each used setting resolves; the typed getters and the table agree.
        for d in registry::SETTINGS
            .iter()
            .filter(|d| d.support == Support::Used)
        {
            let value = match d.kind {
                Kind::Bool => "true",
                Kind::Int(min) => {
                    if min > 16 {
                        "20971520"
                    } else {
                        "16"
                    }
                }
                Kind::Duration => "10s",
                Kind::Choice(words) => words[0],
                _ => "x",
            };
            let mut pairs = vec![(d.name, value)];
            if d.name == "WALG_S3_PREFIX" {
                pairs = vec![(d.name, "s3://b/p")];
            }
            if d.name == "WALG_SENTINEL_USER_DATA" {
                pairs = vec![(d.name, r#"{"team": "dba"}"#)];
            }
            if d.name == "WALG_ZSTD_LEVEL" {
                pairs.push(("WALG_COMPRESSION_METHOD", "zstd"));
            }
            assert!(resolve(&pairs).is_ok(), "{} = {value}", d.name);
        }
    }
}
