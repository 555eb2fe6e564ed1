//! Golden and round-trip tests of the backup documents, with the examples of WAL-G's code,
//! docs and test data.

use super::*;

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap()
}

fn time(s: &str) -> GoTime {
    GoTime::parse(s).unwrap()
}

const FULL_SENTINEL: &str = concat!(
    r#"{"LSN":67108904,"PgVersion":160004,"FinishLSN":67109176,"SystemIdentifier":7312345678901234567,"#,
    r#""UncompressedSize":23456789,"CompressedSize":3456789,"DataCatalogSize":23500000,"ChkpNum":null,"#,
    r#""Version":2,"StartTime":"2024-05-01T10:00:00.123457Z","FinishTime":"2024-05-01T10:00:05.654321Z","#,
    r#""DateFmt":"%Y-%m-%dT%H:%M:%S.%fZ","Hostname":"db1","DataDir":"/var/lib/postgresql/16/main","#,
    r#""IsPermanent":false}"#
);

fn full_sentinel() -> Sentinel {
    Sentinel {
        lsn: Some(67108904),
        pg_version: 160004,
        finish_lsn: Some(67109176),
        system_identifier: Some(7312345678901234567),
        uncompressed_size: 23456789,
        compressed_size: 3456789,
        data_catalog_size: 23500000,
        version: SENTINEL_VERSION,
        start_time: time("2024-05-01T10:00:00.123457Z"),
        finish_time: time("2024-05-01T10:00:05.654321Z"),
        date_fmt: DATE_FMT.to_string(),
        hostname: "db1".to_string(),
        data_dir: "/var/lib/postgresql/16/main".to_string(),
        ..Sentinel::default()
    }
}

#[test]
fn full_sentinel_is_written_byte_for_byte() {
    assert_eq!(text(full_sentinel().to_json().unwrap()), FULL_SENTINEL);
    let read = Sentinel::from_json(FULL_SENTINEL.as_bytes()).unwrap();
    assert_eq!(read, full_sentinel());
    assert!(!read.is_delta());
    assert_eq!(read.legacy_files_metadata(), None);
}

#[test]
fn delta_sentinel_fields_follow_lsn() {
    let sentinel = Sentinel {
        delta_lsn: Some(67108864),
        delta_from: Some("base_000000010000000000000003".to_string()),
        delta_full_name: Some("base_000000010000000000000002".to_string()),
        delta_count: Some(1),
        delta_chkp_num: Some(7),
        chkp_num: Some(8),
        files_metadata_disabled: true,
        user_data: Some(serde_json::json!({"x": [3], "a": "<&>"})),
        ..full_sentinel()
    };
    let written = text(sentinel.to_json().unwrap());
    assert_eq!(
        written,
        concat!(
            r#"{"LSN":67108904,"DeltaLSN":67108864,"DeltaFrom":"base_000000010000000000000003","#,
            r#""DeltaFullName":"base_000000010000000000000002","DeltaCount":1,"PgVersion":160004,"#,
            r#""FinishLSN":67109176,"SystemIdentifier":7312345678901234567,"UncompressedSize":23456789,"#,
            r#""CompressedSize":3456789,"DataCatalogSize":23500000,"#,
            r#""UserData":{"a":"\u003c\u0026\u003e","x":[3]},"FilesMetadataDisabled":true,"#,
            r#""ChkpNum":8,"DeltaChkpNum":7,"Version":2,"StartTime":"2024-05-01T10:00:00.123457Z","#,
            r#""FinishTime":"2024-05-01T10:00:05.654321Z","DateFmt":"%Y-%m-%dT%H:%M:%S.%fZ","#,
            r#""Hostname":"db1","DataDir":"/var/lib/postgresql/16/main","IsPermanent":false}"#
        )
    );
    let read = Sentinel::from_json(written.as_bytes()).unwrap();
    assert_eq!(read, sentinel);
    assert!(read.is_delta());
    assert_eq!(read.check_delta_fields(), Ok(()));
    let broken = Sentinel {
        delta_count: None,
        delta_lsn: None,
        ..sentinel
    };
    assert_eq!(
        broken.check_delta_fields(),
        Err("delta sentinel without DeltaLSN, DeltaCount".to_string())
    );
}

#[test]
fn zero_and_unknown_values_are_omitted_or_null_as_go_writes_them() {
    let sentinel = Sentinel::default();
    assert_eq!(
        text(sentinel.to_json().unwrap()),
        concat!(
            r#"{"LSN":null,"PgVersion":0,"FinishLSN":null,"UncompressedSize":0,"CompressedSize":0,"#,
            r#""ChkpNum":null,"Version":0,"StartTime":"0001-01-01T00:00:00Z","#,
            r#""FinishTime":"0001-01-01T00:00:00Z","DateFmt":"","Hostname":"","DataDir":"","#,
            r#""IsPermanent":false}"#
        )
    );
    // UserData: null is omitted like a nil interface; an empty object is written.
    let with_null = Sentinel {
        user_data: Some(serde_json::Value::Null),
        ..Sentinel::default()
    };
    assert!(!text(with_null.to_json().unwrap()).contains("UserData"));
    let with_empty = Sentinel {
        user_data: Some(serde_json::json!({})),
        ..Sentinel::default()
    };
    assert!(text(with_empty.to_json().unwrap()).contains(r#""UserData":{}"#));
}

#[test]
fn sentinel_with_tablespaces_writes_spec_as_a_sorted_go_map() {
    let mut spec = TablespaceSpec::new("/var/lib/postgresql/16/main/");
    spec.add("16400", "/mnt/ts1/");
    spec.add("16385", "/mnt/ts0");
    let sentinel = Sentinel {
        spec: Some(spec.clone()),
        ..full_sentinel()
    };
    let written = text(sentinel.to_json().unwrap());
    assert!(
        written.contains(concat!(
            r#""DataCatalogSize":23500000,"Spec":{"16385":{"loc":"/mnt/ts0","link":"pg_tblspc/16385"},"#,
            r#""16400":{"loc":"/mnt/ts1","link":"pg_tblspc/16400"},"#,
            r#""base_prefix":"/var/lib/postgresql/16/main","tablespaces":["16400","16385"]},"ChkpNum":null"#
        )),
        "{written}"
    );
    let read = Sentinel::from_json(written.as_bytes()).unwrap();
    assert_eq!(read.spec.as_ref(), Some(&spec));
    let ts = spec.find("16400").unwrap();
    assert_eq!(ts.location, "/mnt/ts1");
    assert_eq!(ts.link, "pg_tblspc/16400");
}

#[test]
fn sentinel_spec_in_either_case() {
    // internal/databases/postgres/backup_sentinel_dto_test.go
    let lower = r#"{
        "LSN": 83886080,
        "PgVersion": 160000,
        "spec": {
            "base_prefix": "/pgdata/test",
            "tablespaces": ["16451"],
            "16451": {"loc": "/pgdata/tablespace1", "link": "pg_tblspc/16451"}
        }
    }"#;
    let read = Sentinel::from_json(lower.as_bytes()).unwrap();
    let spec = read.spec.unwrap();
    assert_eq!(spec.base_prefix, "/pgdata/test");
    assert_eq!(
        spec.tablespaces,
        vec![Tablespace {
            name: "16451".to_string(),
            location: "/pgdata/tablespace1".to_string(),
            link: "pg_tblspc/16451".to_string(),
        }]
    );
    assert_eq!(read.lsn, Some(83886080));
    assert_eq!(read.pg_version, 160000);
    assert_eq!(read.finish_lsn, None);
    assert_eq!(read.version, 0);
    assert!(read.start_time.is_zero());

    let upper = lower.replace("\"spec\"", "\"Spec\"");
    let read = Sentinel::from_json(upper.as_bytes()).unwrap();
    assert_eq!(read.spec.unwrap().base_prefix, "/pgdata/test");

    let none = Sentinel::from_json(br#"{"LSN": 83886080, "PgVersion": 160000}"#).unwrap();
    assert_eq!(none.spec, None);
    // Written back, the key is "Spec".
    let mut spec = TablespaceSpec::new("/pgdata/test");
    spec.add("16451", "/pgdata/tablespace1");
    let out = text(
        Sentinel {
            spec: Some(spec),
            pg_version: 160000,
            ..Sentinel::default()
        }
        .to_json()
        .unwrap(),
    );
    assert!(out.contains(r#""Spec":"#));
}

#[test]
fn sentinel_keys_are_matched_ignoring_case_and_unknown_keys_ignored() {
    let read = Sentinel::from_json(
        br#"{"lsn":1,"pgversion":150000,"finishlsn":2,"ISPERMANENT":true,"Timeline":1,
            "starttime":"2024-05-01T10:00:00Z","SomethingNew":{"a":1},"userdata":[1]}"#,
    )
    .unwrap();
    assert_eq!(read.lsn, Some(1));
    assert_eq!(read.pg_version, 150000);
    assert_eq!(read.finish_lsn, Some(2));
    assert!(read.is_permanent);
    assert_eq!(read.start_time.to_string(), "2024-05-01T10:00:00Z");
    assert_eq!(read.user_data, Some(serde_json::json!([1])));
    // null leaves the zero value, as in Go.
    let read = Sentinel::from_json(br#"{"PgVersion":null,"Hostname":null,"LSN":null}"#).unwrap();
    assert_eq!(read, Sentinel::default());
    // Wrong types are errors.
    assert!(Sentinel::from_json(br#"{"LSN":"0/1"}"#).is_err());
    assert!(Sentinel::from_json(br#"{"StartTime":"yesterday"}"#).is_err());
    assert!(Sentinel::from_json(b"[]").is_err());
    assert!(Sentinel::from_json(b"").is_err());
}

#[test]
fn legacy_sentinel_fields_are_read() {
    let old = br#"{"LSN":100,"DeltaFromLSN":50,"DeltaFrom":"base_000000010000000000000001",
        "DeltaFullName":"base_000000010000000000000001","DeltaCount":1,"PgVersion":100000,
        "FinishLSN":200,
        "Files":{"/PG_VERSION":{"IsIncremented":false,"IsSkipped":true,"MTime":"2020-08-20T21:02:56.690095409+05:00","UpdatesCount":0}},
        "TarFileSets":{"part_001.tar.lz4":["/PG_VERSION"]}}"#;
    let read = Sentinel::from_json(old).unwrap();
    assert_eq!(read.delta_lsn, Some(50));
    assert_eq!(read.legacy_delta_from_lsn, None);
    assert_eq!(read.check_delta_fields(), Ok(()));
    let files = read.legacy_files_metadata().unwrap();
    let desc = &files.files["/PG_VERSION"];
    assert!(desc.is_skipped);
    assert_eq!(
        desc.mtime.to_string(),
        "2020-08-20T21:02:56.690095409+05:00"
    );
    assert_eq!(files.tar_file_sets["part_001.tar.lz4"], ["/PG_VERSION"]);
    // Legacy fields are never written; DeltaFromLSN comes back as DeltaLSN.
    let written = text(read.to_json().unwrap());
    assert!(!written.contains("Files"));
    assert!(!written.contains("DeltaFromLSN"));
    assert!(written.starts_with(r#"{"LSN":100,"DeltaLSN":50,"#));
    // DeltaLSN wins over the legacy key.
    let both = Sentinel::from_json(br#"{"DeltaLSN":7,"DeltaFromLSN":50}"#).unwrap();
    assert_eq!(both.delta_lsn, Some(7));
}

/// The first backup of WAL-G's cmd/pg/exporter/testdata/backup-list.json.
const METADATA: &str = concat!(
    r#"{"start_time":"2025-12-20T02:00:01.793015Z","finish_time":"2025-12-20T02:00:18.538578Z","#,
    r#""date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","#,
    r#""pg_version":150015,"start_lsn":3325915299880,"finish_lsn":3325916080832,"is_permanent":false,"#,
    r#""system_identifier":7507672962298572862,"uncompressed_size":2604967632,"compressed_size":858502390}"#
);

#[test]
fn metadata_is_written_byte_for_byte() {
    let meta = ExtendedMetadata {
        start_time: GoTime::utc(ceil_to_micros(
            "2025-12-20T02:00:01.793014001Z".parse().unwrap(),
        )),
        finish_time: time("2025-12-20T02:00:18.538578Z"),
        date_fmt: DATE_FMT.to_string(),
        hostname: "superpg".to_string(),
        data_dir: "/pgroot/data".to_string(),
        pg_version: 150015,
        start_lsn: 3325915299880,
        finish_lsn: 3325916080832,
        is_permanent: false,
        system_identifier: Some(7507672962298572862),
        uncompressed_size: 2604967632,
        compressed_size: 858502390,
        user_data: None,
    };
    assert_eq!(text(meta.to_json().unwrap()), METADATA);
    assert_eq!(
        ExtendedMetadata::from_json(METADATA.as_bytes()).unwrap(),
        meta
    );

    let unknown = ExtendedMetadata {
        system_identifier: None,
        user_data: Some(serde_json::json!({"env": "prod", "n": 1.5})),
        ..meta
    };
    let written = text(unknown.to_json().unwrap());
    assert!(written.ends_with(
        r#""is_permanent":false,"system_identifier":null,"uncompressed_size":2604967632,"compressed_size":858502390,"user_data":{"env":"prod","n":1.5}}"#
    ));
    assert_eq!(
        ExtendedMetadata::from_json(written.as_bytes()).unwrap(),
        unknown
    );
}

#[test]
fn metadata_reading_is_lenient_like_go() {
    // An older WAL-G wrote "timeline"; keys in another case still match.
    let read = ExtendedMetadata::from_json(
        br#"{"START_TIME":"2025-12-20T02:00:01.793015+03:00","Is_Permanent":true,"timeline":67,"pg_version":null}"#,
    )
    .unwrap();
    assert!(read.is_permanent);
    assert_eq!(read.pg_version, 0);
    // The offset read is the offset written back.
    assert_eq!(
        read.start_time.to_string(),
        "2025-12-20T02:00:01.793015+03:00"
    );
    assert!(read.finish_time.is_zero());
    assert_eq!(
        ExtendedMetadata::from_json(b"{}").unwrap(),
        ExtendedMetadata::default()
    );
    assert!(ExtendedMetadata::from_json(b"{\"start_lsn\":-1}").is_err());
    assert!(ExtendedMetadata::from_json(b"not json").is_err());
}

/// The example of the format spec (§3.3), as one line.
const FILES_METADATA: &str = concat!(
    r#"{"Files":{"/":{"IsIncremented":false,"IsSkipped":false,"MTime":"2024-05-01T12:59:00.1+02:00","UpdatesCount":0},"#,
    r#""/PG_VERSION":{"IsIncremented":false,"IsSkipped":false,"MTime":"2024-04-01T09:00:00.123456789+02:00","UpdatesCount":0},"#,
    r#""/base/5/1259":{"IsIncremented":true,"IsSkipped":false,"MTime":"2024-05-01T12:58:59.99+02:00","UpdatesCount":0}},"#,
    r#""TarFileSets":{"backup_label.tar.lz4":["tablespace_map","backup_label"],"part_001.tar.lz4":["/","/PG_VERSION","/base/5/1259"]},"#,
    r#""DatabasesByNames":{"postgres":{"oid":5,"tables_new":{"public.t":{"oid":16384,"relfilenode":16384}}}}}"#
);

#[test]
fn files_metadata_round_trip() {
    let read = FilesMetadata::from_json(FILES_METADATA.as_bytes()).unwrap();
    assert_eq!(read.files.len(), 3);
    assert!(read.files["/base/5/1259"].is_incremented);
    assert_eq!(
        read.files["/PG_VERSION"].mtime.timestamp(),
        "2024-04-01T07:00:00.123456789Z".parse().unwrap()
    );
    assert_eq!(
        read.tar_file_sets["backup_label.tar.lz4"],
        ["tablespace_map", "backup_label"]
    );
    let postgres = &read.databases_by_names["postgres"];
    assert_eq!(postgres.oid, 5);
    assert_eq!(postgres.tables["public.t"].relfilenode, 16384);
    assert!(postgres.tables["public.t"].subtables.is_empty());
    // Sorted keys, so the spec's example comes back byte for byte.
    assert_eq!(text(read.to_json().unwrap()), FILES_METADATA);
    // json v2 does not escape HTML characters.
    let mut odd = FilesMetadata::default();
    odd.tar_file_sets
        .insert("part_001.tar".to_string(), vec!["/a<b>&c".to_string()]);
    assert_eq!(
        text(odd.to_json().unwrap()),
        r#"{"TarFileSets":{"part_001.tar":["/a<b>&c"]}}"#
    );
    assert_eq!(text(FilesMetadata::default().to_json().unwrap()), "{}");
}

#[test]
fn file_descriptions_with_corrupt_blocks_and_local_mtimes() {
    let zone = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(5 * 3600).unwrap());
    let desc = BackupFileDescription {
        is_incremented: false,
        is_skipped: false,
        mtime: GoTime::in_zone("2020-08-21T14:09:52.966149937Z".parse().unwrap(), &zone),
        corrupt_blocks: Some(CorruptBlocksInfo {
            corrupt_blocks_count: 12,
            some_corrupt_blocks: vec![1, 2, 3],
        }),
        updates_count: 0,
    };
    let json = text(serde_json::to_vec(&desc).unwrap());
    assert_eq!(
        json,
        concat!(
            r#"{"IsIncremented":false,"IsSkipped":false,"MTime":"2020-08-21T19:09:52.966149937+05:00","#,
            r#""CorruptBlocks":{"CorruptBlocksCount":12,"SomeCorruptBlocks":[1,2,3]},"UpdatesCount":0}"#
        )
    );
    let back: BackupFileDescription = serde_json::from_str(&json).unwrap();
    assert_eq!(back, desc);
    // Lower-case keys and a null list, as Go accepts them.
    let back: BackupFileDescription = serde_json::from_str(
        r#"{"isskipped":true,"mtime":"2020-08-20T21:02:56.690095409+05:00","corruptblocks":{"corruptblockscount":1,"someCorruptBlocks":null}}"#,
    )
    .unwrap();
    assert!(back.is_skipped);
    assert_eq!(
        back.corrupt_blocks.unwrap().some_corrupt_blocks,
        Vec::<u32>::new()
    );
}

#[test]
fn nested_tables_round_trip() {
    let json = r#"{"DatabasesByNames":{"db":{"oid":16384,"tables_new":{"public.t":{"oid":16385,"relfilenode":16390,"subtables":{"pg_toast.pg_toast_16385":{"oid":16388,"relfilenode":16388}}}}},"template1":{"oid":1}}}"#;
    let read = FilesMetadata::from_json(json.as_bytes()).unwrap();
    let t = &read.databases_by_names["db"].tables["public.t"];
    assert_eq!(t.subtables["pg_toast.pg_toast_16385"].oid, 16388);
    assert!(read.databases_by_names["template1"].tables.is_empty());
    assert_eq!(text(read.to_json().unwrap()), json);
}

#[test]
fn tablespace_spec_errors() {
    assert!(TablespaceSpec::from_json(br#"{"tablespaces":[]}"#).is_err());
    assert!(TablespaceSpec::from_json(br#"{"base_prefix":1}"#).is_err());
    assert!(TablespaceSpec::from_json(br#"{"base_prefix":"/d","tablespaces":["16400"]}"#).is_err());
    assert!(
        TablespaceSpec::from_json(
            br#"{"base_prefix":"/d","tablespaces":["16400"],"16400":{"loc":"/x"}}"#
        )
        .is_err()
    );
    assert!(TablespaceSpec::from_json(br#"{"base_prefix":"/d","tablespaces":[16400]}"#).is_err());
    // No tablespaces list: an empty spec; trailing slashes trimmed.
    let spec = TablespaceSpec::from_json(br#"{"base_prefix":"/d/"}"#).unwrap();
    assert_eq!(spec, TablespaceSpec::new("/d"));
    assert!(spec.is_empty());
    assert_eq!(
        text(crate::layout::to_vec_v1(&spec).unwrap()),
        r#"{"base_prefix":"/d","tablespaces":[]}"#
    );
}

fn spec_with(entries: &[(&str, &str, &str)]) -> TablespaceSpec {
    TablespaceSpec {
        base_prefix: "/old/data".into(),
        tablespaces: entries
            .iter()
            .map(|(name, location, link)| Tablespace {
                name: (*name).into(),
                location: (*location).into(),
                link: (*link).into(),
            })
            .collect(),
    }
}

#[test]
fn a_tablespace_spec_is_restorable_only_with_numeric_links_and_separate_absolute_locations() {
    let good = spec_with(&[
        ("16400", "/mnt/ts1", "pg_tblspc/16400"),
        ("16401", "/mnt/ts10", "pg_tblspc/16401"),
    ]);
    good.check_restorable("/srv/data").unwrap();
    let bad = [
        ("16400", "/mnt/ts1", "../../x"),
        ("16400", "/mnt/ts1", "/etc/x"),
        ("16400", "/mnt/ts1", "pg_tblspc/16401"),
        ("16400", "/mnt/ts1", "pg_tblspc/../16400"),
        ("../16400", "/mnt/ts1", "pg_tblspc/../16400"),
        ("abc", "/mnt/ts1", "pg_tblspc/abc"),
        ("16400", "mnt/ts1", "pg_tblspc/16400"),
        ("16400", "/mnt/../etc", "pg_tblspc/16400"),
        ("16400", "/mnt//ts1", "pg_tblspc/16400"),
        ("16400", "/mnt/./ts1", "pg_tblspc/16400"),
        ("16400", "/", "pg_tblspc/16400"),
        ("16400", "/mnt/ts\n1", "pg_tblspc/16400"),
        ("16400", "/srv/data/ts", "pg_tblspc/16400"),
        ("16400", "/srv/data", "pg_tblspc/16400"),
        ("16400", "/srv", "pg_tblspc/16400"),
    ];
    for entry in bad {
        let err = spec_with(&[entry])
            .check_restorable("/srv/data")
            .unwrap_err();
        assert!(!err.contains('\n'), "{err}");
    }
    for pair in [
        [
            ("16400", "/mnt/ts", "pg_tblspc/16400"),
            ("16401", "/mnt/ts/inner", "pg_tblspc/16401"),
        ],
        [
            ("16400", "/mnt/ts", "pg_tblspc/16400"),
            ("16401", "/mnt/ts", "pg_tblspc/16401"),
        ],
        [
            ("16400", "/mnt/a", "pg_tblspc/16400"),
            ("16400", "/mnt/b", "pg_tblspc/16400"),
        ],
    ] {
        assert!(spec_with(&pair).check_restorable("/srv/data").is_err());
    }
}
