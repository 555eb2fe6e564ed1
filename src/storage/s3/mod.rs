//! S3 storage (`WALG_S3_PREFIX`): objects in one bucket below a key root.
//!
//! The settings types are always built; the client ([`S3Storage`], in `backend`) only with the
//! `s3` feature (on by default), so that the fuzz targets, which exercise no network code,
//! build without the AWS SDK.
//!
//! The object key in the bucket is `<root>/<key>`, or `<key>` when the root is empty
//! (WAL-G compat, format §1.6).

#[cfg(feature = "s3")]
mod backend;

use std::path::PathBuf;
use std::time::Duration;

use crate::util::secret::Secret;
#[cfg(feature = "s3")]
pub use backend::S3Storage;

/// Resolved settings of the S3 backend. Built once by `crate::config`; nothing here reads
/// the environment.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Bucket name (the host part of `s3://bucket/path`).
    pub bucket: String,
    /// Key prefix inside the bucket, without leading or trailing `/`; may be empty.
    pub root: String,
    /// `AWS_REGION`; `None` means: `us-east-1` with a custom endpoint, else ask the bucket.
    pub region: Option<String>,
    /// `AWS_ENDPOINT`, e.g. `http://127.0.0.1:9000`.
    pub endpoint: Option<String>,
    /// `AWS_S3_FORCE_PATH_STYLE`.
    pub force_path_style: bool,
    pub credentials: S3Credentials,
    /// `S3_STORAGE_CLASS` (`STANDARD`).
    pub storage_class: String,
    /// `S3_SSE`: `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// `S3_SSE_KMS_ID`.
    pub sse_kms_id: Option<String>,
    /// `S3_CA_CERT_FILE`: extra CA bundle (PEM).
    pub ca_cert_file: Option<PathBuf>,
    /// `S3_MAX_PART_SIZE`: multipart part size in bytes (20 MiB).
    pub max_part_size: usize,
    /// `WALG_UPLOAD_CONCURRENCY`: parts of one multipart upload in flight at once.
    pub upload_concurrency: usize,
    /// `S3_MAX_RETRIES`: retries after the first attempt of each request.
    pub max_retries: u32,
    /// `WALG_DOWNLOAD_FILE_RETRIES`: resumes of one download whose body broke off.
    pub download_retries: u32,
    /// `S3_REQUEST_TIMEOUT`: deadline of one request attempt (and idle limit of a body stream).
    pub request_timeout: Duration,
    /// `S3_CONNECT_TIMEOUT`.
    pub connect_timeout: Duration,
    /// `S3_DELETE_BATCH_SIZE` (1000).
    pub delete_batch_size: usize,
}

/// Where credentials come from, already resolved from settings.
#[derive(Debug, Clone, Default)]
pub struct S3Credentials {
    /// `AWS_ACCESS_KEY_ID` (tried first when the secret is set too).
    pub access_key_id: Option<String>,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret>,
    /// `AWS_SESSION_TOKEN`.
    pub session_token: Option<Secret>,
    /// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`).
    pub shared_credentials_file: Option<PathBuf>,
    /// `AWS_CONFIG_FILE` (default `~/.aws/config`).
    pub config_file: Option<PathBuf>,
    /// `AWS_PROFILE` (default `default`).
    pub profile: Option<String>,
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (with `AWS_ROLE_ARN`: IRSA / web identity).
    pub web_identity_token_file: Option<PathBuf>,
    /// `AWS_ROLE_ARN`.
    pub role_arn: Option<String>,
    /// `AWS_ROLE_SESSION_NAME`.
    pub role_session_name: Option<String>,
    /// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` (ECS task role).
    pub container_credentials_relative_uri: Option<String>,
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub container_credentials_full_uri: Option<String>,
    /// `AWS_EC2_METADATA_DISABLED`: never ask the instance metadata service.
    pub ec2_metadata_disabled: bool,
    /// The home directory, for the default file locations.
    pub home: Option<PathBuf>,
}
