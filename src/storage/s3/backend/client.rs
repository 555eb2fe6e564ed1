//! Builds the S3 client from [`S3Settings`]: region, endpoint, addressing style, TLS trust,
//! connect timeout, credentials, and no SDK retries (see `retry`).
//!
//! Checksums are computed and validated only where S3 requires them (`WhenRequired`): the
//! SDK's default CRC32 with aws-chunked trailer signing is rejected by S3-compatible stores
//! such as Garage.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, IdentityCache, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    SharedCredentialsProvider, SharedHttpClient, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::SdkError;
use aws_smithy_http_client::tls;

use super::S3Settings;
use super::credentials;
use super::retry::{chain_text, seconds};
use crate::storage::StorageError;

/// The region used when none is set and none can be found out.
pub(super) const DEFAULT_REGION: &str = "us-east-1";

/// A ready client and what was resolved on the way.
pub(super) struct Built {
    pub client: Client,
    pub region: String,
    pub credential_sources: String,
}

/// Builds the client. Makes a request (GetBucketLocation) only when neither a region nor an
/// endpoint is set.
pub(super) async fn build(settings: &S3Settings) -> Result<Built, StorageError> {
    let http = http_client(settings).await?;
    let configured_region = settings
        .region
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let endpoint = settings
        .endpoint
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty());
    let chain = credentials::build(
        &settings.credentials,
        configured_region.unwrap_or(DEFAULT_REGION),
        http.clone(),
        settings.connect_timeout,
        settings.request_timeout,
    );
    let base = Base {
        settings,
        endpoint,
        http,
        credentials: chain.provider,
    };
    let region = match (configured_region, endpoint) {
        (Some(region), _) => region.to_string(),
        (None, Some(_)) => DEFAULT_REGION.to_string(),
        (None, None) => bucket_region(&base).await,
    };
    Ok(Built {
        client: base.client(&region),
        region,
        credential_sources: chain.sources,
    })
}

/// Everything of the client but the region.
struct Base<'a> {
    settings: &'a S3Settings,
    endpoint: Option<&'a str>,
    http: SharedHttpClient,
    credentials: SharedCredentialsProvider,
}

impl Base<'_> {
    fn client(&self, region: &str) -> Client {
        let settings = self.settings;
        // Loading credentials may take a request (web identity, container, instance metadata);
        // it is bounded too, and each request attempt is bounded again by `retry::run`.
        let load_timeout = settings.connect_timeout + settings.request_timeout;
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.to_string()))
            .credentials_provider(self.credentials.clone())
            .identity_cache(IdentityCache::lazy().load_timeout(load_timeout).build())
            .http_client(self.http.clone())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.connect_timeout)
                    .build(),
            )
            // Stalls are caught by our own deadlines: per attempt, and per body read in `download`.
            .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .force_path_style(settings.force_path_style);
        if let Some(endpoint) = self.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Client::from_conf(config.build())
    }
}

/// The HTTPS client, trusting the platform's roots plus `S3_CA_CERT_FILE` if set.
async fn http_client(settings: &S3Settings) -> Result<SharedHttpClient, StorageError> {
    let mut context = tls::TlsContext::builder();
    if let Some(path) = &settings.ca_cert_file {
        let pem = tokio::fs::read(path)
            .await
            .map_err(|source| StorageError::Io {
                op: "reading the s3 ca certificate file",
                path: path.display().to_string(),
                source,
            })?;
        context = context.with_trust_store(tls::TrustStore::default().with_pem_certificate(pem));
    }
    let context = context.build().map_err(|e| StorageError::Refused {
        op: "configure",
        key: String::new(),
        message: format!("invalid tls settings for s3: {}", chain_text(&e)),
    })?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https())
}

/// Asks S3 where the bucket lives (GetBucketLocation, as WAL-G does), falling back to the
/// `x-amz-bucket-region` header of an error answer, then to `us-east-1`.
async fn bucket_region(base: &Base<'_>) -> String {
    let client = base.client(DEFAULT_REGION);
    let bucket = &base.settings.bucket;
    let deadline = base.settings.connect_timeout + base.settings.request_timeout;
    let answer =
        tokio::time::timeout(deadline, client.get_bucket_location().bucket(bucket).send()).await;
    let found = match answer {
        Ok(Ok(out)) => Some(match out.location_constraint().map(|c| c.as_str()) {
            None | Some("") => DEFAULT_REGION.to_string(),
            Some("EU") => "eu-west-1".to_string(),
            Some(other) => other.to_string(),
        }),
        Ok(Err(err)) => {
            let header = match &err {
                SdkError::ServiceError(service) => {
                    service.raw().headers().get("x-amz-bucket-region")
                }
                SdkError::ResponseError(response) => {
                    response.raw().headers().get("x-amz-bucket-region")
                }
                _ => None,
            };
            if header.is_none() {
                tracing::warn!(bucket = %bucket, error = %chain_text(&err), "could not find out the bucket's region, using {DEFAULT_REGION}");
            }
            header.map(str::to_string)
        }
        Err(_) => {
            tracing::warn!(bucket = %bucket, "no answer to GetBucketLocation within {}, using {DEFAULT_REGION}", seconds(deadline));
            None
        }
    };
    found.unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// Extra time a request that sends `bytes` may take: one second per MiB.
pub(super) fn transfer_allowance(bytes: usize) -> Duration {
    Duration::from_secs_f64(bytes as f64 / (1024.0 * 1024.0))
}
