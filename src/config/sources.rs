//! Where raw setting values come from: hidden flags, the environment, the JSON config file.
//!
//! WAL-G compat (internal/config/config.go, viper): precedence flag > environment > config file >
//! default; keys are case-insensitive; an empty environment variable counts as unset; the
//! config file is `--config`, else `WALG_CONFIG_PATH`, else `$HOME/.walg.json`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::registry::{self, Kind, SettingDef};

/// Where a value was found, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File(PathBuf),
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => f.write_str("command line"),
            Source::Env => f.write_str("environment"),
            Source::File(path) => write!(f, "config file '{}'", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// A value with the name it was found under and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawValue {
    pub value: String,
    /// The spelling that matched (a name or an alias).
    pub name: &'static str,
    pub source: Source,
}

/// A problem with the sources themselves (not with one value).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read config file '{path}': {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file '{path}' is not a JSON object of settings: {message}")]
    Parse { path: String, message: String },
    /// A value of a JSON type that makes no sense for the setting (the value is not shown: it
    /// may be a secret).
    #[error("invalid {name} (from config file '{path}'): {found} where {expected} is expected")]
    WrongType {
        name: String,
        path: String,
        found: &'static str,
        expected: &'static str,
    },
}

/// All raw values, before typing.
#[derive(Debug, Default, Clone)]
pub struct RawConfig {
    flags: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
    /// Non-fatal findings (unknown keys), logged once logging is up.
    pub warnings: Vec<String>,
}

impl RawConfig {
    /// Gathers the sources. `flags` maps setting names (any case) to values given as hidden
    /// flags; `env` is a snapshot of the process environment; `config_flag` is `--config`.
    pub fn load(
        flags: BTreeMap<String, String>,
        env: BTreeMap<String, String>,
        config_flag: Option<PathBuf>,
    ) -> Result<RawConfig, SourceError> {
        let env: BTreeMap<String, String> =
            env.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        let flags = flags
            .into_iter()
            .map(|(k, v)| (k.to_ascii_uppercase(), v))
            .collect();
        let mut raw = RawConfig {
            flags,
            env,
            ..RawConfig::default()
        };
        let (path, explicit) = match (config_flag, raw.env.get("WALG_CONFIG_PATH")) {
            (Some(path), _) => (Some(path), true),
            (None, Some(path)) => (Some(PathBuf::from(path)), true),
            (None, None) => (
                raw.env
                    .get("HOME")
                    .map(|home| Path::new(home).join(".walg.json")),
                false,
            ),
        };
        if let Some(path) = path {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    raw.file = parse_file(&path, &text)?;
                    raw.file_path = Some(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {}
                Err(source) => {
                    return Err(SourceError::Read {
                        path: path.display().to_string(),
                        source,
                    });
                }
            }
        }
        raw.collect_unknown();
        Ok(raw)
    }

    fn collect_unknown(&mut self) {
        for key in self.file.keys() {
            if registry::find(key).is_none() && key != "WALG_CONFIG_PATH" {
                self.warnings.push(format!("{key} is unknown"));
            }
        }
        for key in self.env.keys() {
            if key.starts_with("WALG_")
                && key != "WALG_CONFIG_PATH"
                && registry::find(key).is_none()
            {
                self.warnings.push(format!("{key} is unknown"));
            }
        }
    }

    /// The config file that was read, if any.
    pub fn file_path(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    /// An environment variable that is not a setting (`HOME`).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// Looks a setting up: each spelling (name, then aliases) in each source, flag first.
    pub fn get(&self, def: &'static SettingDef) -> Option<RawValue> {
        for name in std::iter::once(&def.name).chain(def.aliases.iter()) {
            if let Some(value) = self.flags.get(*name) {
                return Some(RawValue {
                    value: value.clone(),
                    name,
                    source: Source::Flag,
                });
            }
            if let Some(value) = self.env.get(*name) {
                return Some(RawValue {
                    value: value.clone(),
                    name,
                    source: Source::Env,
                });
            }
            if let Some(value) = self.file.get(*name) {
                let path = self.file_path.clone().unwrap_or_default();
                return Some(RawValue {
                    value: value.clone(),
                    name,
                    source: Source::File(path),
                });
            }
        }
        def.default.map(|value| RawValue {
            value: value.to_string(),
            name: def.name,
            source: Source::Default,
        })
    }
}

fn parse_file(path: &Path, text: &str) -> Result<BTreeMap<String, String>, SourceError> {
    let parse_err = |message: String| SourceError::Parse {
        path: path.display().to_string(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| parse_err(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(parse_err("the top level must be an object".to_string()));
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        check_json_type(path, &key, &value)?;
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        // WAL-G trims trailing newlines of values (GetSetting).
        out.insert(
            key.to_ascii_uppercase(),
            text.trim_end_matches(['\r', '\n']).to_string(),
        );
    }
    Ok(out)
}

/// Refuses a config file value whose JSON type makes no sense for its setting. Strings are
/// always accepted (and parsed later, like environment values); numbers and booleans where
/// WAL-G accepts them: numbers for whole numbers, durations, booleans (`0`, `1`), words and
/// plain strings, booleans for booleans and words. A path or a secret must be a string (a
/// number would lose its spelling: `007`, `1e3`); objects and arrays only for
/// `WALG_SENTINEL_USER_DATA`, which is JSON. Unknown keys are left to the unknown-key warning.
fn check_json_type(path: &Path, key: &str, value: &serde_json::Value) -> Result<(), SourceError> {
    use serde_json::Value;
    let Some(def) = registry::find(key) else {
        return Ok(());
    };
    let found = match value {
        Value::Null | Value::String(_) => return Ok(()),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let json_setting = def.name == "WALG_SENTINEL_USER_DATA";
    let (accepted, expected) = match def.kind {
        Kind::Path => (false, "a path (a JSON string)"),
        Kind::Secret => (false, "a JSON string"),
        Kind::Bool => (
            matches!(value, Value::Bool(_) | Value::Number(_)),
            "true or false",
        ),
        Kind::Int(_) => (matches!(value, Value::Number(_)), "a whole number"),
        Kind::Duration => (matches!(value, Value::Number(_)), "a duration"),
        Kind::Choice(_) => (
            matches!(value, Value::Bool(_) | Value::Number(_)),
            "one of its words (a JSON string)",
        ),
        Kind::Str if json_setting => (true, "JSON"),
        Kind::Str => (
            matches!(value, Value::Bool(_) | Value::Number(_)),
            "a JSON string",
        ),
    };
    if accepted {
        return Ok(());
    }
    Err(SourceError::WrongType {
        name: key.to_ascii_uppercase(),
        path: path.display().to_string(),
        found,
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn def(name: &str) -> &'static SettingDef {
        registry::find(name).unwrap()
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("walg.json");
        std::fs::write(&file, r#"{"walg_compression_method": "zstd", "WALG_UPLOAD_CONCURRENCY": 3, "AWS_S3_FORCE_PATH_STYLE": true}"#).unwrap();
        let raw = RawConfig::load(
            env(&[("WALG_COMPRESSION_METHOD", "brotli")]),
            env(&[
                ("WALG_COMPRESSION_METHOD", "lzma"),
                ("WALG_UPLOAD_CONCURRENCY", ""),
            ]),
            Some(file.clone()),
        )
        .unwrap();
        let v = raw.get(def("WALG_COMPRESSION_METHOD")).unwrap();
        assert_eq!((v.value.as_str(), v.source), ("brotli", Source::Flag));
        // An empty env value is unset: the file wins.
        let v = raw.get(def("WALG_UPLOAD_CONCURRENCY")).unwrap();
        assert_eq!((v.value.as_str(), v.source), ("3", Source::File(file)));
        assert_eq!(
            raw.get(def("AWS_S3_FORCE_PATH_STYLE")).unwrap().value,
            "true"
        );
        let v = raw.get(def("WALG_DOWNLOAD_CONCURRENCY")).unwrap();
        assert_eq!((v.value.as_str(), v.source), ("10", Source::Default));
        assert!(raw.get(def("WALG_S3_PREFIX")).is_none());
    }

    #[test]
    fn name_before_aliases() {
        let raw = RawConfig::load(
            BTreeMap::new(),
            env(&[
                ("WALE_S3_PREFIX", "s3://old/x"),
                ("WALG_S3_PREFIX", "s3://new/y"),
            ]),
            None,
        )
        .unwrap();
        assert_eq!(raw.get(def("WALG_S3_PREFIX")).unwrap().value, "s3://new/y");
        let raw = RawConfig::load(
            BTreeMap::new(),
            env(&[("WALE_S3_PREFIX", "s3://old/x")]),
            None,
        )
        .unwrap();
        let v = raw.get(def("WALG_S3_PREFIX")).unwrap();
        assert_eq!((v.value.as_str(), v.name), ("s3://old/x", "WALE_S3_PREFIX"));
    }

    #[test]
    fn config_file_locations() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(
            home.path().join(".walg.json"),
            r#"{"WALG_FILE_PREFIX": "/from/home"}"#,
        )
        .unwrap();
        let home_env = env(&[("HOME", home.path().to_str().unwrap())]);
        let raw = RawConfig::load(BTreeMap::new(), home_env.clone(), None).unwrap();
        assert_eq!(
            raw.get(def("WALG_FILE_PREFIX")).unwrap().value,
            "/from/home"
        );

        let other = home.path().join("other.json");
        std::fs::write(&other, r#"{"WALG_FILE_PREFIX": "/from/path"}"#).unwrap();
        let mut with_path = home_env.clone();
        with_path.insert("WALG_CONFIG_PATH".into(), other.display().to_string());
        let raw = RawConfig::load(BTreeMap::new(), with_path, None).unwrap();
        assert_eq!(
            raw.get(def("WALG_FILE_PREFIX")).unwrap().value,
            "/from/path"
        );

        // A missing default file is fine; a missing explicit one is an error.
        let empty = tempfile::tempdir().unwrap();
        assert!(
            RawConfig::load(
                BTreeMap::new(),
                env(&[("HOME", empty.path().to_str().unwrap())]),
                None
            )
            .is_ok()
        );
        assert!(
            RawConfig::load(
                BTreeMap::new(),
                BTreeMap::new(),
                Some(empty.path().join("nope.json"))
            )
            .is_err()
        );
    }

    #[test]
    fn broken_file_and_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{ not json").unwrap();
        let err = RawConfig::load(BTreeMap::new(), BTreeMap::new(), Some(bad)).unwrap_err();
        assert!(err.to_string().contains("bad.json"), "{err}");

        let good = dir.path().join("good.json");
        std::fs::write(&good, r#"{"WALG_TYPO": "1"}"#).unwrap();
        let raw = RawConfig::load(
            BTreeMap::new(),
            env(&[("WALG_OTHER_TYPO", "x"), ("PATH", "/bin")]),
            Some(good),
        )
        .unwrap();
        assert_eq!(
            raw.warnings,
            vec![
                "WALG_TYPO is unknown".to_string(),
                "WALG_OTHER_TYPO is unknown".to_string()
            ]
        );
    }

    #[test]
    fn config_file_values_of_a_senseless_json_type_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("walg.json");
        let load = |json: &str| {
            std::fs::write(&file, json).unwrap();
            RawConfig::load(BTreeMap::new(), BTreeMap::new(), Some(file.clone()))
        };
        for refused in [
            r#"{"WALG_FILE_PREFIX": 5}"#,
            r#"{"walg_file_prefix": true}"#,
            r#"{"AWS_SECRET_ACCESS_KEY": 12345}"#,
            r#"{"WALG_UPLOAD_CONCURRENCY": [4]}"#,
            r#"{"WALG_COMPRESSION_METHOD": {"lz4": 1}}"#,
            r#"{"WALG_UPLOAD_CONCURRENCY": true}"#,
        ] {
            let err = load(refused).expect_err(refused);
            assert!(
                matches!(err, SourceError::WrongType { .. })
                    && err.to_string().contains("walg.json"),
                "{refused}: {err}"
            );
            assert!(!err.to_string().contains("12345"), "{err}");
        }
        let raw = load(
            r#"{"WALG_UPLOAD_CONCURRENCY": 4, "WALG_PREVENT_WAL_OVERWRITE": true,
                "WALG_SENTINEL_USER_DATA": {"a": 1}, "WALG_NO_SUCH": [1]}"#,
        )
        .unwrap();
        assert_eq!(raw.get(def("WALG_UPLOAD_CONCURRENCY")).unwrap().value, "4");
        assert_eq!(
            raw.get(def("WALG_PREVENT_WAL_OVERWRITE")).unwrap().value,
            "true"
        );
        assert_eq!(
            raw.get(def("WALG_SENTINEL_USER_DATA")).unwrap().value,
            r#"{"a":1}"#
        );
    }
}
