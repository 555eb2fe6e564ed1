//! The credentials chain, built explicitly from [`S3Credentials`] (no SDK default chain):
//!
//! 1. static keys, when both the key id and the secret are set (nothing else is tried);
//! 2. the profile (`AWS_PROFILE`, default `default`) in the shared credentials file and the
//!    config file, at the paths from settings or below `home` (e.g. a Kubernetes Secret mounted
//!    as a file with `[default]`, `aws_access_key_id=`, `aws_secret_access_key=`). A profile
//!    named in `AWS_PROFILE` is the only source: when no file has it, that is the error (naming
//!    the profile and the files), and nothing else is tried, instance metadata least of all;
//! 3. web identity (token file + role ARN + session name), through STS;
//! 4. ECS container credentials, when a container credentials URI is set;
//! 5. the EC2 instance metadata service, unless `ec2_metadata_disabled`, with short timeouts.
//!
//! aws-config's providers read the token file and the profile files at the paths given here.
//! Two of them still consult the process environment, which aws-config does not let callers
//! replace (`ProviderConfig::with_env` is crate-private): the ECS provider reads the container
//! URI (and its authorization token) from there, so it is added only when settings carry a
//! URI; and STS/IMDS clients honour the SDK's endpoint variables. Secrets never reach
//! `Debug` output or errors: the SDK redacts them, and errors name sources, not values.

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::meta::credentials::CredentialsProviderChain;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider, future};
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use aws_sdk_s3::config::{Region, SharedHttpClient};

use super::S3Credentials;

/// Instance metadata: the well-known address, asked once with short timeouts, so that a
/// machine outside EC2 fails fast instead of hanging.
const IMDS_ENDPOINT: &str = "http://169.254.169.254";
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);

/// The chain and a description of where it looks, for the "no credentials" error.
pub(super) struct Chain {
    pub provider: SharedCredentialsProvider,
    pub sources: String,
}

/// Builds the chain. `region` is the one STS is asked in (web identity, profile roles).
pub(super) fn build(
    creds: &S3Credentials,
    region: &str,
    http: SharedHttpClient,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> Chain {
    if let Some(keys) = static_keys(creds) {
        return Chain {
            provider: SharedCredentialsProvider::new(keys),
            sources: "static keys".into(),
        };
    }
    let conf = provider_config(region, http, connect_timeout, request_timeout);
    let mut chain = ChainBuilder::default();

    let ecs = container_uri_set(creds).then(|| {
        SharedCredentialsProvider::new(
            EcsCredentialsProvider::builder()
                .configure(&conf)
                .connect_timeout(connect_timeout)
                .read_timeout(request_timeout)
                .build(),
        )
    });
    let imds = (!creds.ec2_metadata_disabled).then(|| imds_provider(&conf));

    let named = non_empty(&creds.profile);
    let profile = named.unwrap_or("default");
    let files = profile_files(creds);
    if let Some(missing) = named.and_then(|named| missing_profile(creds, named, &files)) {
        return Chain {
            provider: SharedCredentialsProvider::new(Misconfigured(missing.clone())),
            sources: missing,
        };
    }
    if files.is_empty() {
        chain.sources.push(format!(
            "profile '{profile}' (no credentials or config file found)"
        ));
    } else {
        let shown: Vec<String> = files
            .iter()
            .map(|(_, p)| format!("'{}'", p.display()))
            .collect();
        chain.push(
            "Profile",
            profile_provider(&conf, profile, &files, &ecs, &imds),
            format!("profile '{profile}' in {}", shown.join(" and ")),
        );
    }

    // A profile asked for by name is the only source.
    if named.is_none() {
        if let Some((provider, token_file)) = web_identity_provider(creds, &conf) {
            chain.push(
                "WebIdentityToken",
                provider,
                format!("web identity token '{}'", token_file.display()),
            );
        }
        if let Some(ecs) = ecs {
            chain.push("EcsContainer", ecs, "container credentials".into());
        }
        match imds {
            Some(imds) => chain.push("Ec2InstanceMetadata", imds, "instance metadata".into()),
            None => chain.sources.push("instance metadata disabled".into()),
        }
    }
    chain.finish()
}

/// The configuration every provider of the chain shares: STS region, HTTP client, two
/// attempts, the connect and request timeouts.
fn provider_config(
    region: &str,
    http: SharedHttpClient,
    connect_timeout: Duration,
    request_timeout: Duration,
) -> ProviderConfig {
    ProviderConfig::default()
        .with_region(Some(Region::new(region.to_string())))
        .with_http_client(http)
        .with_retry_config(RetryConfig::standard().with_max_attempts(2))
        .with_timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(connect_timeout)
                .operation_attempt_timeout(request_timeout)
                .build(),
        )
}

/// The providers of the chain, in order, and a description of each source it looks in.
#[derive(Default)]
struct ChainBuilder {
    providers: Vec<(Cow<'static, str>, SharedCredentialsProvider)>,
    sources: Vec<String>,
}

impl ChainBuilder {
    fn push(&mut self, name: &'static str, provider: SharedCredentialsProvider, source: String) {
        self.providers.push((name.into(), provider));
        self.sources.push(source);
    }

    /// The providers tried in order; with none, a provider that says so.
    fn finish(self) -> Chain {
        let mut providers = self.providers.into_iter();
        let provider = match providers.next() {
            None => {
                SharedCredentialsProvider::new(NoCredentials("no credentials source is configured"))
            }
            Some((name, first)) => {
                let chain = providers.fold(
                    CredentialsProviderChain::first_try(name, first),
                    |chain, (name, next)| chain.or_else(name, next),
                );
                SharedCredentialsProvider::new(chain)
            }
        };
        Chain {
            provider,
            sources: self.sources.join(", "),
        }
    }
}

/// The profile `profile` in `files`; its `credential_source` may name only what settings
/// allow.
fn profile_provider(
    conf: &ProviderConfig,
    profile: &str,
    files: &[(EnvConfigFileKind, PathBuf)],
    ecs: &Option<SharedCredentialsProvider>,
    imds: &Option<SharedCredentialsProvider>,
) -> SharedCredentialsProvider {
    let mut set = EnvConfigFiles::builder();
    for (kind, path) in files {
        set = set.with_file(*kind, path);
    }
    let builder = ProfileFileCredentialsProvider::builder()
        .configure(conf)
        .profile_files(set.build())
        .profile_name(profile)
        .with_custom_provider("Environment", NoCredentials("static keys are not set"))
        .with_custom_provider(
            "EcsContainer",
            or_nothing(ecs, "no container credentials uri is set"),
        )
        .with_custom_provider(
            "Ec2InstanceMetadata",
            or_nothing(imds, "instance metadata is disabled"),
        );
    SharedCredentialsProvider::new(builder.build())
}

/// A web identity token provider and its token file, when a token file and a role are set.
fn web_identity_provider<'c>(
    creds: &'c S3Credentials,
    conf: &ProviderConfig,
) -> Option<(SharedCredentialsProvider, &'c Path)> {
    let (Some(token_file), Some(role_arn)) =
        (&creds.web_identity_token_file, non_empty(&creds.role_arn))
    else {
        return None;
    };
    let session_name = non_empty(&creds.role_session_name)
        .map(str::to_string)
        .unwrap_or_else(|| format!("walg-{}", jiff::Timestamp::now().as_second()));
    let provider = WebIdentityTokenCredentialsProvider::builder()
        .configure(conf)
        .static_configuration(StaticConfiguration {
            web_identity_token_file: token_file.clone(),
            role_arn: role_arn.to_string(),
            session_name,
        })
        .build();
    Some((
        SharedCredentialsProvider::new(provider),
        token_file.as_path(),
    ))
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// Static keys when both the key id and the secret are set (whitespace-trimmed, as WAL-G does).
fn static_keys(creds: &S3Credentials) -> Option<Credentials> {
    let id = non_empty(&creds.access_key_id)?;
    let secret = creds
        .secret_access_key
        .as_ref()
        .map(|s| s.expose().trim())
        .filter(|s| !s.is_empty())?;
    let token = creds
        .session_token
        .as_ref()
        .map(|t| t.expose().trim().to_string())
        .filter(|t| !t.is_empty());
    Some(Credentials::new(id, secret, token, None, "walg-settings"))
}

fn container_uri_set(creds: &S3Credentials) -> bool {
    non_empty(&creds.container_credentials_relative_uri).is_some()
        || non_empty(&creds.container_credentials_full_uri).is_some()
}

/// The profile files that exist: the shared credentials file and the config file, at the
/// paths from settings or at `~/.aws/credentials` and `~/.aws/config`.
fn profile_files(creds: &S3Credentials) -> Vec<(EnvConfigFileKind, PathBuf)> {
    let below_home = |name: &str| creds.home.as_ref().map(|home| home.join(".aws").join(name));
    let candidates = [
        (
            EnvConfigFileKind::Credentials,
            creds
                .shared_credentials_file
                .clone()
                .or_else(|| below_home("credentials")),
        ),
        (
            EnvConfigFileKind::Config,
            creds.config_file.clone().or_else(|| below_home("config")),
        ),
    ];
    candidates
        .into_iter()
        .filter_map(|(kind, path)| path.filter(|p| is_file(p)).map(|p| (kind, p)))
        .collect()
}

/// When profile `name`, asked for by name, is in none of `files`: the one-line error that says
/// so, naming the files (or where they were looked for).
fn missing_profile(
    creds: &S3Credentials,
    name: &str,
    files: &[(EnvConfigFileKind, PathBuf)],
) -> Option<String> {
    if files.is_empty() {
        let below_home = |file: &str| creds.home.as_ref().map(|h| h.join(".aws").join(file));
        let looked: Vec<String> = [
            creds
                .shared_credentials_file
                .clone()
                .or_else(|| below_home("credentials")),
            creds.config_file.clone().or_else(|| below_home("config")),
        ]
        .into_iter()
        .flatten()
        .map(|p| format!("'{}'", p.display()))
        .collect();
        return Some(if looked.is_empty() {
            format!("AWS_PROFILE '{name}' is set, but no credentials or config file was found")
        } else {
            format!(
                "AWS_PROFILE '{name}' is set, but no credentials or config file exists (looked for {})",
                looked.join(" and ")
            )
        });
    }
    if files
        .iter()
        .any(|(kind, path)| profile_sections(path, *kind).iter().any(|p| p == name))
    {
        return None;
    }
    let shown: Vec<String> = files
        .iter()
        .map(|(_, p)| format!("'{}'", p.display()))
        .collect();
    Some(format!(
        "profile '{name}' (AWS_PROFILE) is not in {}",
        shown.join(" or ")
    ))
}

/// The profile names a credentials or config file defines: `[name]` in a credentials file,
/// `[profile name]` (or `[default]`) in a config file. Reads at most 1 MiB; an unreadable file
/// defines none (the SDK reports it when it reads the file).
fn profile_sections(path: &Path, kind: EnvConfigFileKind) -> Vec<String> {
    use std::io::Read as _;
    let mut text = String::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(1 << 20).read_to_string(&mut text).map(drop));
    if read.is_err() {
        return Vec::new();
    }
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let inner = line.strip_prefix('[')?.split_once(']')?.0.trim();
            match kind {
                EnvConfigFileKind::Config => match inner.strip_prefix("profile") {
                    Some(rest) if rest.starts_with(char::is_whitespace) => {
                        Some(rest.trim().to_string())
                    }
                    _ if inner == "default" => Some(inner.to_string()),
                    _ => None,
                },
                _ => Some(inner.to_string()),
            }
        })
        .collect()
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn imds_provider(conf: &ProviderConfig) -> SharedCredentialsProvider {
    let client = imds::Client::builder()
        .configure(conf)
        .connect_timeout(IMDS_TIMEOUT)
        .read_timeout(IMDS_TIMEOUT)
        .operation_timeout(IMDS_TIMEOUT * 3)
        .max_attempts(1);
    // A fixed endpoint: the SDK's endpoint variables are not consulted.
    let client = match client.clone().endpoint(IMDS_ENDPOINT) {
        Ok(with_endpoint) => with_endpoint,
        Err(_) => client,
    };
    SharedCredentialsProvider::new(
        ImdsCredentialsProvider::builder()
            .configure(conf)
            .imds_client(client.build())
            .build(),
    )
}

fn or_nothing(
    provider: &Option<SharedCredentialsProvider>,
    why: &'static str,
) -> SharedCredentialsProvider {
    match provider {
        Some(p) => p.clone(),
        None => SharedCredentialsProvider::new(NoCredentials(why)),
    }
}

/// A configuration that cannot give credentials: always "invalid configuration", which ends a
/// chain with this message.
#[derive(Debug)]
struct Misconfigured(String);

impl ProvideCredentials for Misconfigured {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::invalid_configuration(
            self.0.clone(),
        )))
    }
}

/// A source that is not configured: always "not loaded", so a chain moves on.
#[derive(Debug)]
struct NoCredentials(&'static str);

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::secret::Secret;

    #[test]
    fn static_keys_need_both_parts() {
        let mut creds = S3Credentials {
            access_key_id: Some(" AKID ".into()),
            ..S3Credentials::default()
        };
        assert!(static_keys(&creds).is_none());
        creds.secret_access_key = Some(Secret::new("  "));
        assert!(static_keys(&creds).is_none());
        creds.secret_access_key = Some(Secret::new("s3cr3t\n"));
        let keys = static_keys(&creds);
        assert_eq!(keys.as_ref().map(|k| k.access_key_id()), Some("AKID"));
        assert_eq!(keys.as_ref().map(|k| k.secret_access_key()), Some("s3cr3t"));
        assert!(!format!("{keys:?}").contains("s3cr3t"));
    }

    #[test]
    fn profile_files_come_from_settings_or_home() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let aws = dir.path().join(".aws");
        std::fs::create_dir_all(&aws).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(aws.join("credentials"), "[default]\n").unwrap_or_else(|e| panic!("{e}"));
        let creds = S3Credentials {
            home: Some(dir.path().to_path_buf()),
            ..S3Credentials::default()
        };
        let files = profile_files(&creds);
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].1, aws.join("credentials"));
        let elsewhere = S3Credentials {
            shared_credentials_file: Some(dir.path().join("missing")),
            ..creds
        };
        assert!(profile_files(&elsewhere).is_empty());
    }

    #[test]
    fn profile_sections_of_credentials_and_config_files() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(&creds, "[default]\na=1\n [walg] \n# [commented]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&config, "[default]\n[profile other]\n[bare]\n")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            profile_sections(&creds, EnvConfigFileKind::Credentials),
            ["default", "walg"]
        );
        assert_eq!(
            profile_sections(&config, EnvConfigFileKind::Config),
            ["default", "other"]
        );
        let settings = S3Credentials {
            shared_credentials_file: Some(creds.clone()),
            config_file: Some(config.clone()),
            ..S3Credentials::default()
        };
        let files = profile_files(&settings);
        assert_eq!(missing_profile(&settings, "walg", &files), None);
        assert_eq!(missing_profile(&settings, "other", &files), None);
        assert_eq!(
            missing_profile(&settings, "bare", &files),
            Some(format!(
                "profile 'bare' (AWS_PROFILE) is not in '{}' or '{}'",
                creds.display(),
                config.display()
            ))
        );
    }

    #[tokio::test]
    async fn a_missing_named_profile_ends_the_chain_without_instance_metadata() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id=A\naws_secret_access_key=B\n",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let creds = S3Credentials {
            profile: Some("nosuch".into()),
            shared_credentials_file: Some(file.clone()),
            // Metadata allowed: a named profile must still not reach for it.
            ec2_metadata_disabled: false,
            ..S3Credentials::default()
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let chain = build(
            &creds,
            "us-east-1",
            http,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        // Checked before asking the chain, so that a chain with metadata is never asked here.
        assert_eq!(
            chain.sources,
            format!(
                "profile 'nosuch' (AWS_PROFILE) is not in '{}'",
                file.display()
            )
        );
        let result = chain.provider.provide_credentials().await;
        assert!(
            matches!(result, Err(CredentialsError::InvalidConfiguration(_))),
            "{result:?}"
        );
    }

    #[tokio::test]
    async fn an_empty_chain_reports_not_loaded() {
        let creds = S3Credentials {
            ec2_metadata_disabled: true,
            ..S3Credentials::default()
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        let chain = build(
            &creds,
            "us-east-1",
            http,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let result = chain.provider.provide_credentials().await;
        assert!(
            matches!(result, Err(CredentialsError::CredentialsNotLoaded(_))),
            "{result:?}"
        );
        assert!(
            chain.sources.contains("instance metadata disabled"),
            "{}",
            chain.sources
        );
    }
}
