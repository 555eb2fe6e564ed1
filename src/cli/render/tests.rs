//! Golden tests of the list renderers against WAL-G's expected outputs
//! (internal/printlist/entities_test.go, internal/backup_list_handler_test.go,
//! cmd/pg/exporter/testdata/backup-list.json).

use super::*;
use crate::layout::BackupName;
use crate::layout::backup::{sentinel_key, wal_file_name};

fn summary(name: &str, modified: &str) -> BackupSummary {
    BackupSummary {
        name: BackupName::parse(name).unwrap(),
        modified: modified.parse().unwrap(),
        wal_file_name: wal_file_name(name).to_string(),
        sentinel: sentinel_key(&BackupName::parse(name).unwrap()),
    }
}

fn render_list(backups: &[BackupSummary], format: ListFormat) -> String {
    let mut out = Vec::new();
    write_backup_list(&mut out, backups, format, &TimeZones::utc()).unwrap();
    String::from_utf8(out).unwrap()
}

fn render_details(details: &[BackupDetail], format: ListFormat) -> String {
    let mut out = Vec::new();
    write_backup_details(&mut out, details, format, &TimeZones::utc()).unwrap();
    String::from_utf8(out).unwrap()
}

const JSON: ListFormat = ListFormat {
    json: true,
    pretty: false,
    detail: false,
};
const PRETTY_JSON: ListFormat = ListFormat {
    json: true,
    pretty: true,
    detail: false,
};
const PLAIN: ListFormat = ListFormat {
    json: false,
    pretty: false,
    detail: false,
};
const PRETTY: ListFormat = ListFormat {
    json: false,
    pretty: true,
    detail: false,
};

fn walg_test_backups() -> Vec<BackupSummary> {
    // time.Unix(1690000000, 0), one second apart.
    vec![
        summary("base_111", "2023-07-22T04:26:40Z"),
        summary("base_222", "2023-07-22T04:26:41Z"),
        summary("base_333", "2023-07-22T04:26:42Z"),
    ]
}

#[test]
fn pretty_json_as_walg_handler_test() {
    let want = r#"[
    {
        "backup_name": "base_111",
        "time": "2023-07-22T04:26:40Z",
        "wal_file_name": "ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "storage_name": "default"
    },
    {
        "backup_name": "base_222",
        "time": "2023-07-22T04:26:41Z",
        "wal_file_name": "ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "storage_name": "default"
    },
    {
        "backup_name": "base_333",
        "time": "2023-07-22T04:26:42Z",
        "wal_file_name": "ZZZZZZZZZZZZZZZZZZZZZZZZ",
        "storage_name": "default"
    }
]
"#;
    assert_eq!(render_list(&walg_test_backups(), PRETTY_JSON), want);
}

#[test]
fn plain_json_is_one_line() {
    let backups = vec![summary(
        "base_000000430000030600000060",
        "2025-12-20T02:00:19.896Z",
    )];
    assert_eq!(
        render_list(&backups, JSON),
        concat!(
            r#"[{"backup_name":"base_000000430000030600000060","time":"2025-12-20T02:00:19.896Z","#,
            r#""wal_file_name":"000000430000030600000060","storage_name":"default"}]"#,
            "\n"
        )
    );
}

#[test]
fn no_backups() {
    assert_eq!(render_list(&[], JSON), "[]\n");
    assert_eq!(render_list(&[], PRETTY_JSON), "[]\n");
    assert_eq!(render_list(&[], PLAIN), "");
    assert_eq!(render_list(&[], PRETTY), "");
    let detail = ListFormat {
        detail: true,
        ..JSON
    };
    assert_eq!(render_details(&[], detail), "[]\n");
    assert_eq!(render_details(&[], PLAIN), "");
}

fn exporter_backups() -> Vec<BackupSummary> {
    vec![
        summary("base_000000430000030600000060", "2025-12-20T02:00:19.896Z"),
        summary(
            "base_0000004300000388000000AC_D_000000430000038500000003",
            "2025-12-30T10:07:00.807Z",
        ),
    ]
}

#[test]
fn plain_table() {
    assert_eq!(
        render_list(&exporter_backups(), PLAIN),
        concat!(
            "backup_name                                              modified             wal_file_name            storage_name\n",
            "base_000000430000030600000060                            2025-12-20T02:00:19Z 000000430000030600000060 default\n",
            "base_0000004300000388000000AC_D_000000430000038500000003 2025-12-30T10:07:00Z 0000004300000388000000AC default\n",
        )
    );
}

#[test]
fn pretty_table() {
    assert_eq!(
        render_list(&exporter_backups(), PRETTY),
        concat!(
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
            "| # | BACKUP NAME                                              | MODIFIED                         | WAL FILE NAME            | STORAGE NAME |\n",
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
            "| 0 | base_000000430000030600000060                            | Saturday, 20-Dec-25 02:00:19 UTC | 000000430000030600000060 | default      |\n",
            "| 1 | base_0000004300000388000000AC_D_000000430000038500000003 | Tuesday, 30-Dec-25 10:07:00 UTC  | 0000004300000388000000AC | default      |\n",
            "+---+----------------------------------------------------------+----------------------------------+--------------------------+--------------+\n",
        )
    );
}

fn exporter_details() -> Vec<BackupDetail> {
    let metas = [
        r#"{"start_time":"2025-12-20T02:00:01.793015Z","finish_time":"2025-12-20T02:00:18.538578Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","pg_version":150015,"start_lsn":3325915299880,"finish_lsn":3325916080832,"is_permanent":false,"system_identifier":7507672962298572862,"uncompressed_size":2604967632,"compressed_size":858502390}"#,
        r#"{"start_time":"2025-12-30T10:06:51.293562Z","finish_time":"2025-12-30T10:07:00.682024Z","date_fmt":"%Y-%m-%dT%H:%M:%S.%fZ","hostname":"superpg","data_dir":"/pgroot/data","pg_version":150015,"start_lsn":3885536116952,"finish_lsn":3885536563600,"is_permanent":true,"system_identifier":7507672962298572862,"uncompressed_size":928772120,"compressed_size":386034756}"#,
    ];
    exporter_backups()
        .into_iter()
        .zip(metas)
        .map(|(backup, meta)| BackupDetail {
            backup,
            metadata: Some(ExtendedMetadata::from_json(meta.as_bytes()).unwrap()),
        })
        .collect()
}

#[test]
fn detail_pretty_json_as_exporter_test_data() {
    // cmd/pg/exporter/testdata/backup-list.json (re-indented by 4, as --pretty writes;
    // is_permanent of the second backup set to true here).
    let want = r#"[
    {
        "backup_name": "base_000000430000030600000060",
        "time": "2025-12-20T02:00:19.896Z",
        "wal_file_name": "000000430000030600000060",
        "storage_name": "default",
        "start_time": "2025-12-20T02:00:01.793015Z",
        "finish_time": "2025-12-20T02:00:18.538578Z",
        "date_fmt": "%Y-%m-%dT%H:%M:%S.%fZ",
        "hostname": "superpg",
        "data_dir": "/pgroot/data",
        "pg_version": 150015,
        "start_lsn": 3325915299880,
        "finish_lsn": 3325916080832,
        "is_permanent": false,
        "system_identifier": 7507672962298572862,
        "uncompressed_size": 2604967632,
        "compressed_size": 858502390
    },
    {
        "backup_name": "base_0000004300000388000000AC_D_000000430000038500000003",
        "time": "2025-12-30T10:07:00.807Z",
        "wal_file_name": "0000004300000388000000AC",
        "storage_name": "default",
        "start_time": "2025-12-30T10:06:51.293562Z",
        "finish_time": "2025-12-30T10:07:00.682024Z",
        "date_fmt": "%Y-%m-%dT%H:%M:%S.%fZ",
        "hostname": "superpg",
        "data_dir": "/pgroot/data",
        "pg_version": 150015,
        "start_lsn": 3885536116952,
        "finish_lsn": 3885536563600,
        "is_permanent": true,
        "system_identifier": 7507672962298572862,
        "uncompressed_size": 928772120,
        "compressed_size": 386034756
    }
]
"#;
    let format = ListFormat {
        detail: true,
        ..PRETTY_JSON
    };
    assert_eq!(render_details(&exporter_details(), format), want);
}

#[test]
fn detail_plain_table() {
    let format = ListFormat {
        detail: true,
        ..PLAIN
    };
    assert_eq!(
        render_details(&exporter_details(), format),
        concat!(
            "backup_name                                              modified             wal_file_name            storage_name start_time           finish_time          hostname data_dir     pg_version start_lsn    finish_lsn   is_permanent\n",
            "base_000000430000030600000060                            2025-12-20T02:00:19Z 000000430000030600000060 default      2025-12-20T02:00:01Z 2025-12-20T02:00:18Z superpg  /pgroot/data 150015     306/60000028 306/600BEAC0 false\n",
            "base_0000004300000388000000AC_D_000000430000038500000003 2025-12-30T10:07:00Z 0000004300000388000000AC default      2025-12-30T10:06:51Z 2025-12-30T10:07:00Z superpg  /pgroot/data 150015     388/AC0000D8 388/AC06D190 true\n",
        )
    );
}

#[test]
fn detail_pretty_table_headers_and_times() {
    let format = ListFormat {
        detail: true,
        ..PRETTY
    };
    let text = render_details(&exporter_details()[..1], format);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[1],
        "| # | BACKUP NAME                   | MODIFIED                         | WAL FILE NAME            | STORAGE NAME | START TIME                       | FINISH TIME                      | HOSTNAME | DATADIR      | PG VERSION | START LSN    | FINISH LSN   | PERMANENT |"
    );
    assert_eq!(
        lines[3],
        "| 0 | base_000000430000030600000060 | Saturday, 20-Dec-25 02:00:19 UTC | 000000430000030600000060 | default      | Saturday, 20-Dec-25 02:00:01 UTC | Saturday, 20-Dec-25 02:00:18 UTC | superpg  | /pgroot/data | 150015     | 306/60000028 | 306/600BEAC0 | false     |"
    );
}

#[test]
fn detail_without_metadata_shows_zero_values() {
    let details = vec![BackupDetail {
        backup: summary("base_111", "2023-07-22T04:26:40Z"),
        metadata: None,
    }];
    let plain = ListFormat {
        detail: true,
        ..PLAIN
    };
    assert_eq!(
        render_details(&details, plain).lines().nth(1),
        Some(
            "base_111    2023-07-22T04:26:40Z ZZZZZZZZZZZZZZZZZZZZZZZZ default      -          -                             0          0/0       0/0        false"
        )
    );
    let json = ListFormat {
        detail: true,
        ..JSON
    };
    assert_eq!(
        render_details(&details, json),
        concat!(
            r#"[{"backup_name":"base_111","time":"2023-07-22T04:26:40Z","wal_file_name":"ZZZZZZZZZZZZZZZZZZZZZZZZ","#,
            r#""storage_name":"default","start_time":"0001-01-01T00:00:00Z","finish_time":"0001-01-01T00:00:00Z","#,
            r#""date_fmt":"","hostname":"","data_dir":"","pg_version":0,"start_lsn":0,"finish_lsn":0,"#,
            r#""is_permanent":false,"system_identifier":null,"uncompressed_size":0,"compressed_size":0}]"#,
            "\n"
        )
    );
}

#[test]
fn json_escapes_html_and_shows_user_data() {
    let meta = ExtendedMetadata {
        hostname: "a<b>&c".to_string(),
        user_data: Some(serde_json::json!({"x": [3]})),
        ..ExtendedMetadata::default()
    };
    let details = vec![BackupDetail {
        backup: summary("base_111", "2023-07-22T04:26:40Z"),
        metadata: Some(meta),
    }];
    let json = ListFormat {
        detail: true,
        ..JSON
    };
    let text = render_details(&details, json);
    assert!(
        text.contains(r#""hostname":"a\u003cb\u003e\u0026c""#),
        "{text}"
    );
    assert!(text.ends_with("\"compressed_size\":0,\"user_data\":{\"x\":[3]}}]\n"));
}

/// The fields of internal/printlist/entities_test.go's test entity.
fn entity(a: &str, a_pretty: &str, b: &str) -> Vec<Field> {
    vec![
        Field {
            name: "a",
            pretty_name: "A (pretty)",
            value: a.to_string(),
            pretty_value: Some(a_pretty.to_string()),
        },
        field("b", "B (pretty)", b.to_string()),
    ]
}

fn printlist_entities() -> Vec<Vec<Field>> {
    vec![
        entity("1692753495", "Thu, 23 Aug 2023 09:26:25", "123"),
        entity(
            "lorem ipsum dolor sit amet consectetur adipiscing elit",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
            "some value",
        ),
        entity("", "", ""),
    ]
}

#[test]
fn tables_as_walg_printlist_test() {
    let mut out = Vec::new();
    write_table(&mut out, &printlist_entities(), false).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        concat!(
            "a                                                      b\n",
            "1692753495                                             123\n",
            "lorem ipsum dolor sit amet consectetur adipiscing elit some value\n",
            "                                                       \n",
        )
    );
    let mut out = Vec::new();
    write_table(&mut out, &printlist_entities(), true).unwrap();
    let separator =
        "+---+----------------------------------------------------------+------------+\n";
    assert_eq!(
        String::from_utf8(out).unwrap(),
        [
            separator,
            "| # | A (PRETTY)                                               | B (PRETTY) |\n",
            separator,
            "| 0 | Thu, 23 Aug 2023 09:26:25                                | 123        |\n",
            "| 1 | Lorem ipsum dolor sit amet, consectetur adipiscing elit. | some value |\n",
            "| 2 |                                                          |            |\n",
            separator,
        ]
        .concat()
    );
}

#[test]
fn numbered_column_is_right_aligned() {
    let rows: Vec<Vec<Field>> = (0..11).map(|i| entity("x", "x", &i.to_string())).collect();
    let mut out = Vec::new();
    write_table(&mut out, &rows, true).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1], "|  # | A (PRETTY) | B (PRETTY) |");
    assert_eq!(lines[3], "|  0 | x          | 0          |");
    assert_eq!(lines[13], "| 10 | x          | 10         |");
}

#[test]
fn rfc850_zone_names() {
    let zones = TimeZones::utc();
    let t = GoTime::parse("2025-12-20T05:00:19+03:00").unwrap();
    assert_eq!(
        rfc850(t, &zones, false),
        "Saturday, 20-Dec-25 05:00:19 +0300"
    );
    let t = GoTime::parse("2025-12-20T02:00:19.5Z").unwrap();
    assert_eq!(rfc850(t, &zones, false), "Saturday, 20-Dec-25 02:00:19 UTC");
    assert_eq!(rfc850(GoTime::zero(), &zones, false), "-");
    assert_eq!(rfc3339(GoTime::zero()), "-");
    assert_eq!(Lsn(3325915299880).to_string(), "306/60000028");
    assert_eq!(Lsn(0x1_0000_0000).to_string(), "1/0");
}

#[test]
fn a_listing_renders_as_its_backups_or_its_details() {
    let render = |listing: &Listing, format: ListFormat| {
        let mut out = Vec::new();
        backup_list(&mut out, listing, format, &TimeZones::utc()).unwrap();
        String::from_utf8(out).unwrap()
    };
    let backups = Listing::Backups(exporter_backups());
    assert_eq!(
        render(&backups, PLAIN),
        render_list(&exporter_backups(), PLAIN)
    );
    let details = Listing::Details(exporter_details());
    assert_eq!(
        render(&details, PLAIN),
        render_details(&exporter_details(), PLAIN)
    );
    assert_ne!(render(&details, PLAIN), render(&backups, PLAIN));
}

#[test]
fn storage_times_are_local_only_for_a_local_folder() {
    let local = TimeZone::fixed(jiff::tz::offset(2));
    let fs = StorageSettings::Fs(crate::storage::fs::FsSettings { root: "/x".into() });
    assert_eq!(
        TimeZones::for_storage(Some(&fs), local.clone()).storage,
        local
    );
    assert_eq!(
        TimeZones::for_storage(None, local.clone()).storage,
        TimeZone::UTC
    );
}
