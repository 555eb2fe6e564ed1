//! Hostile and invalid input for the parsers of storage data and of the config file: the
//! hand-written corpus of hostile JSON (deep nesting, huge numbers, wrong types, duplicate
//! keys, NUL bytes, invalid UTF-8, cut-off documents) and the inputs the fuzz targets of
//! `fuzz/` found. Each must give a clear one-line error (or a defined value), never a panic,
//! a stack overflow or memory out of proportion to the input.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use walg::config::sources::RawConfig;
use walg::layout::documents::{ExtendedMetadata, FilesMetadata, Sentinel, TablespaceSpec};

/// Every document parser, by name, as a function from bytes to `Ok(())` or the error text.
type Parser = (&'static str, fn(&[u8]) -> Result<(), String>);

const PARSERS: [Parser; 5] = [
    ("sentinel", |b| {
        Sentinel::from_json(b).map(drop).map_err(|e| e.to_string())
    }),
    ("metadata.json", |b| {
        ExtendedMetadata::from_json(b)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("files_metadata.json", |b| {
        FilesMetadata::from_json(b)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("tablespace spec", |b| {
        TablespaceSpec::from_json(b)
            .map(drop)
            .map_err(|e| e.to_string())
    }),
    ("config file", config_file),
];

/// The config file parser, reached the way the command reaches it: a file named by
/// `--config`.
fn config_file(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("walg.json");
    std::fs::write(&path, bytes).unwrap();
    RawConfig::load(BTreeMap::new(), BTreeMap::new(), Some(path))
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Asserts that every parser refuses `input` with a one-line error containing `expected`
/// (when given), and returns nothing: a panic or stack overflow fails the test by itself.
fn all_refuse(input: &[u8], expected: Option<&str>) {
    for (name, parse) in PARSERS {
        let err = match parse(input) {
            Ok(()) => panic!("{name} accepted {}", preview(input)),
            Err(e) => e,
        };
        assert!(!err.contains('\n'), "{name}: multi-line error {err:?}");
        assert!(err.len() < 1024, "{name}: error of {} bytes", err.len());
        if let Some(expected) = expected {
            assert!(
                err.contains(expected),
                "{name}: {err:?} does not say {expected:?} for {}",
                preview(input)
            );
        }
    }
}

fn preview(input: &[u8]) -> String {
    let shown = &input[..input.len().min(60)];
    format!(
        "{:?} ({} bytes)",
        String::from_utf8_lossy(shown),
        input.len()
    )
}

/// `{"<key>": <value>}` for each document's own field names (the config file takes any key).
fn in_every_field(value: &str, check: impl Fn(&str, &[u8])) {
    for key in [
        "LSN",
        "UserData",
        "Spec",
        "Files",
        "start_time",
        "user_data",
        "DatabasesByNames",
        "base_prefix",
        "tablespaces",
        "WALG_FILE_PREFIX",
    ] {
        check(key, format!("{{\"{key}\": {value}}}").as_bytes());
    }
}

#[test]
fn deep_nesting_hits_the_recursion_limit_instead_of_the_stack() {
    // 100 000 levels would overflow the stack of a parser without serde_json's limit of 128.
    let deep_array = "[".repeat(100_000);
    let deep_object = "{\"a\":".repeat(100_000);
    for nested in [&deep_array, &deep_object] {
        in_every_field(nested, |key, doc| {
            for (name, parse) in PARSERS {
                let err = parse(doc).expect_err(name);
                assert!(!err.contains('\n'), "{name} ({key}): {err}");
            }
        });
        all_refuse(nested.as_bytes(), None);
    }
    // Nested where each document takes nesting: user data, tables in tables.
    let user_data = format!("{{\"UserData\": {}1{}}}", "[".repeat(200), "]".repeat(200));
    assert!(
        Sentinel::from_json(user_data.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("recursion limit exceeded")
    );
    let mut tables = String::from("{}");
    for _ in 0..200 {
        tables = format!("{{\"t\": {{\"subtables\": {tables}}}}}");
    }
    let files = format!("{{\"DatabasesByNames\": {{\"db\": {{\"tables_new\": {tables}}}}}}}");
    assert!(
        FilesMetadata::from_json(files.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("recursion limit exceeded")
    );
}

#[test]
fn nesting_within_the_limit_is_read() {
    // The limit is serde_json's default (128 levels): real user data stays well inside it.
    let user_data = format!("{{\"user_data\": {}1{}}}", "[".repeat(100), "]".repeat(100));
    let meta = ExtendedMetadata::from_json(user_data.as_bytes()).unwrap();
    assert!(meta.user_data.is_some());
}

#[test]
fn numbers_out_of_range_or_of_the_wrong_kind_are_refused() {
    for (doc, field) in [
        (
            r#"{"LSN": 18446744073709551616}"#,
            "sentinel LSN beyond u64",
        ),
        (r#"{"LSN": -1}"#, "negative LSN"),
        (r#"{"LSN": 1e400}"#, "number beyond f64"),
        (r#"{"LSN": 1.5}"#, "fraction"),
        (r#"{"PgVersion": 4294967296}"#, "PgVersion beyond u32"),
        (
            r#"{"UncompressedSize": 9223372036854775808}"#,
            "size beyond i64",
        ),
        (r#"{"DeltaCount": -3}"#, "negative count"),
        (r#"{"LSN": 1e5}"#, "exponent for an integer"),
    ] {
        let err = Sentinel::from_json(doc.as_bytes()).expect_err(field);
        assert!(!err.to_string().contains('\n'), "{field}: {err}");
    }
    for doc in [
        r#"{"start_lsn": 18446744073709551616}"#,
        r#"{"pg_version": -160004}"#,
        r#"{"compressed_size": 1e19}"#,
    ] {
        assert!(
            ExtendedMetadata::from_json(doc.as_bytes()).is_err(),
            "{doc}"
        );
    }
    let corrupt = r#"{"Files": {"/x": {"CorruptBlocks": {"SomeCorruptBlocks": [4294967296]}}}}"#;
    assert!(FilesMetadata::from_json(corrupt.as_bytes()).is_err());
    // Where any JSON is allowed (user data, config values), a number beyond f64 is refused
    // too, after a pass over its digits; a document that ignores the key skips it.
    let digits = "9".repeat(1 << 20);
    in_every_field(&digits, |key, doc| {
        for (name, parse) in PARSERS {
            if let Err(err) = parse(doc) {
                assert!(
                    err.len() < 1024,
                    "{name} ({key}): error of {} bytes",
                    err.len()
                );
            }
        }
    });
    for key in ["UserData", "user_data", "", "x", "WALG_X"] {
        let doc = format!("{{\"{key}\": {digits}}}");
        let by_key = PARSERS.iter().filter(|(name, _)| match key {
            "UserData" => *name == "sentinel",
            "user_data" => *name == "metadata.json",
            "" | "x" => *name == "tablespace spec",
            _ => *name == "config file",
        });
        for (name, parse) in by_key {
            let err = parse(doc.as_bytes()).expect_err(name);
            assert!(err.contains("number out of range"), "{name}: {err}");
        }
    }
    let meta = ExtendedMetadata::from_json(br#"{"user_data": 1e308}"#).unwrap();
    assert!(meta.user_data.unwrap().is_f64());
}

#[test]
fn wrong_types_are_refused_with_the_field_named() {
    for (doc, expected) in [
        (r#"{"LSN": "67108904"}"#, "invalid type: string"),
        (r#"{"IsPermanent": "true"}"#, "invalid type: string"),
        (r#"{"Files": []}"#, "invalid type: sequence"),
        (r#"{"Spec": "x"}"#, "invalid type: string"),
        (r#"{"Hostname": 5}"#, "invalid type: integer"),
        (r#"{"StartTime": 5}"#, "invalid type: integer"),
    ] {
        let err = Sentinel::from_json(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{doc}: {err}");
    }
    for top in ["[]", "\"x\"", "1", "null", "true"] {
        all_refuse(top.as_bytes(), None);
    }
    for doc in [
        r#"{"base_prefix": 5}"#,
        r#"{"base_prefix": "/d", "tablespaces": [5]}"#,
        r#"{"base_prefix": "/d", "tablespaces": ["1"], "1": {"loc": 5, "link": "x"}}"#,
        r#"{"base_prefix": "/d", "tablespaces": ["1"], "1": "pg_tblspc/1"}"#,
        r#"{"base_prefix": "/d", "tablespaces": ["base_prefix"]}"#,
    ] {
        let err = TablespaceSpec::from_json(doc.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("tablespace spec"), "{doc}: {err}");
    }
}

#[test]
fn duplicate_keys_are_refused_in_documents_and_last_wins_in_maps() {
    // A field twice, in any spelling, is an error (Go would take the last one; WAL-G never
    // writes a field twice, so such a document is not one of its).
    for doc in [
        r#"{"LSN": 1, "LSN": 2}"#,
        r#"{"LSN": 1, "lsn": 2}"#,
        r#"{"IsPermanent": false, "isPERMANENT": true}"#,
    ] {
        let err = Sentinel::from_json(doc.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("duplicate field"), "{doc}: {err}");
    }
    let doc = r#"{"is_permanent": true, "Is_Permanent": false}"#;
    assert!(ExtendedMetadata::from_json(doc.as_bytes()).is_err());
    // Map keys (member names, tablespace OIDs, settings): the last one wins.
    let doc = r#"{"Files": {"/a": {"UpdatesCount": 1}, "/a": {"UpdatesCount": 2}}}"#;
    let files = FilesMetadata::from_json(doc.as_bytes()).unwrap();
    assert_eq!(files.files["/a"].updates_count, 2);
    let doc = r#"{"base_prefix": "/a", "base_prefix": "/b", "tablespaces": []}"#;
    assert_eq!(
        TablespaceSpec::from_json(doc.as_bytes())
            .unwrap()
            .base_prefix,
        "/b"
    );
}

#[test]
fn nul_bytes_are_refused_raw_and_kept_escaped() {
    // A raw NUL is not JSON, wherever it is.
    all_refuse(b"{\"LSN\": 1\0}", None);
    all_refuse(b"{\"Hostname\": \"a\0b\"}", Some("control character"));
    all_refuse(b"\0", None);
    // Escaped, it is a character of a string like any other; what uses the string as a path
    // refuses it there.
    let sentinel = Sentinel::from_json(br#"{"Hostname": "a\u0000b"}"#).unwrap();
    assert_eq!(sentinel.hostname, "a\0b");
    let spec = TablespaceSpec::from_json(
        br#"{"base_prefix": "/d\u0000", "tablespaces": ["1"], "1": {"loc": "/\u0000", "link": "x"}}"#,
    )
    .unwrap();
    assert_eq!(spec.tablespaces[0].location, "/\0");
}

#[test]
fn invalid_utf8_and_lone_surrogates_are_refused() {
    // In a key, which every parser reads.
    all_refuse(b"{\"\xff\xfe\": 1}", None);
    all_refuse(br#"{"\ud800": 1}"#, Some("escape"));
    all_refuse(b"\xef\xbb\xbf{}", None); // a byte-order mark is not JSON either
    // In a value the document reads. (The value of a key a document ignores is skipped
    // unchecked, as Go's reader skips it.)
    for (i, doc) in [
        &b"{\"Hostname\": \"\xff\"}"[..],
        b"{\"hostname\": \"\xc3\x28\"}",
        b"{\"TarFileSets\": {\"p\": [\"\xed\xa0\x80\"]}}",
        b"{\"base_prefix\": \"\xf8\"}",
        b"{\"PGHOST\": \"\xc0\xaf\"}",
    ]
    .into_iter()
    .enumerate()
    {
        let (name, parse) = PARSERS[i];
        let err = parse(doc).expect_err(name);
        assert!(
            err.contains("invalid unicode code point") || err.contains("UTF-8"),
            "{name}: {err}"
        );
    }
    for (i, doc) in [
        r#"{"Hostname": "\ud800"}"#,
        r#"{"data_dir": "a\udc00"}"#,
        r#"{"Files": {"/\udfff": {}}}"#,
        r#"{"base_prefix": "\ud800\u0041"}"#,
        r#"{"PGUSER": "\udbff"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        let (name, parse) = PARSERS[i];
        let err = parse(doc.as_bytes()).expect_err(name);
        assert!(
            err.contains("surrogate") || err.contains("escape"),
            "{name}: {err}"
        );
    }
}

#[test]
fn documents_cut_off_anywhere_are_refused() {
    // A long string that never ends, as a document cut short by storage would be: an EOF
    // error after reading what is there, with memory bounded by the input.
    let long = format!("{{\"Hostname\": \"{}", "a".repeat(8 << 20));
    all_refuse(long.as_bytes(), Some("EOF while parsing"));
    let spec = br#"{"base_prefix": "/var/lib/postgresql/16/main", "tablespaces": ["16400"], "16400": {"loc": "/mnt/ts1", "link": "pg_tblspc/16400"}}"#;
    for cut in 0..spec.len() {
        assert!(
            TablespaceSpec::from_json(&spec[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let sentinel = include_bytes!("../../fuzz/seeds/sentinel/spec-delta.json");
    let end = sentinel.iter().rposition(|&b| b == b'}').unwrap();
    for cut in 0..end {
        let err = Sentinel::from_json(&sentinel[..cut])
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'));
    }
    assert!(Sentinel::from_json(sentinel).is_ok());
}

#[test]
fn empty_and_whitespace_documents_are_refused() {
    all_refuse(b"", Some("EOF while parsing"));
    all_refuse(b"   \n\t ", Some("EOF while parsing"));
    all_refuse(b"{} {}", None);
    all_refuse(br#"{"base_prefix": "/d"},"#, Some("trailing characters"));
}
