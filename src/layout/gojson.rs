//! JSON the way WAL-G's Go code reads and writes it. Pure.
//!
//! Writing: Go's `encoding/json` (v1 semantics) escapes `<`, `>`, `&`, U+2028 and U+2029 in
//! strings and writes floats as `strconv.FormatFloat(f, 'f'/'e', -1, 64)`; [`to_vec_v1`] and
//! [`to_vec_v1_indented`] do the same. Map keys come out sorted (serde_json's map is sorted, as
//! Go sorts map keys). Documents WAL-G writes with json v2 defaults (`files_metadata.json`)
//! do not escape HTML characters: plain `serde_json` writes those.
//!
//! Reading: Go matches object keys to struct fields case-insensitively and ignores unknown keys.
//! [`CaseInsensitive`] wraps a deserializer so that a derived struct sees each key spelled as its
//! field is; [`nullable`] makes a `null` leave a field at its default, as Go does.

use std::fmt;
use std::io;

use serde::de::{DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::ser::{CompactFormatter, Formatter, PrettyFormatter};

/// Compact JSON as Go's `json.Marshal` writes it.
pub fn to_vec_v1<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter(CompactFormatter));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Indented JSON as Go's `json.Encoder` with `SetIndent("", indent)` writes it (without the
/// newline the encoder adds at the end).
pub fn to_vec_v1_indented<T: Serialize + ?Sized>(
    value: &T,
    indent: &str,
) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    let formatter = GoFormatter(PrettyFormatter::with_indent(indent.as_bytes()));
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// A serde_json formatter that escapes strings and writes floats as Go's v1 encoder does, and
/// otherwise lays out like the wrapped formatter.
struct GoFormatter<F>(F);

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        writer.write_all(go_float(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        writer.write_all(go_float(f64::from(value)).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (at, c) in fragment.char_indices() {
            let escaped = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..at])?;
            writer.write_all(escaped.as_bytes())?;
            start = at + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }

    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// A float as Go's encoder writes it: shortest digits, plain notation for magnitudes in
/// [1e-6, 1e21), else exponent notation with a sign (`1e+21`, `1.5e-7`).
fn go_float(value: f64) -> String {
    let abs = value.abs();
    if abs == 0.0 || (1e-6..1e21).contains(&abs) {
        return format!("{value}");
    }
    let text = format!("{value:e}");
    match text.split_once('e') {
        Some((mantissa, exp)) => match exp.strip_prefix('-') {
            Some(neg) => format!("{mantissa}e-{neg}"),
            None => format!("{mantissa}e+{exp:0>2}"),
        },
        None => text,
    }
}

/// A deserializer whose structs see object keys matched to their fields case-insensitively
/// (an exact match first), as Go's `encoding/json` does. Keys of maps are left alone.
///
/// Use it from a hand-written `Deserialize` impl that calls a derived `#[serde(remote = "Self")]`
/// deserializer: `Self::deserialize(CaseInsensitive(deserializer))`.
pub struct CaseInsensitive<D>(pub D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for CaseInsensitive<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(FoldingVisitor {
            fields,
            inner: visitor,
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

struct FoldingVisitor<V> {
    fields: &'static [&'static str],
    inner: V,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for FoldingVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(FoldingMap {
            fields: self.fields,
            map,
        })
    }
}

struct FoldingMap<A> {
    fields: &'static [&'static str],
    map: A,
}

/// The field `key` names: itself when it is one, else the first field equal to it ignoring
/// case.
fn canonical(fields: &'static [&'static str], key: &str) -> Option<&'static str> {
    if let Some(exact) = fields.iter().find(|f| **f == key) {
        return Some(exact);
    }
    let lower = key.to_lowercase();
    fields.iter().find(|f| f.to_lowercase() == lower).copied()
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FoldingMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        match canonical(self.fields, &key) {
            Some(field) => seed.deserialize(IntoDeserializer::<A::Error>::into_deserializer(field)),
            None => seed.deserialize(IntoDeserializer::<A::Error>::into_deserializer(key)),
        }
        .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

/// `deserialize_with` for fields Go leaves unchanged on `null`: the default value.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `skip_serializing_if` for Go's `omitempty` on an `interface{}` field: omitted when nil.
pub fn is_null(value: &Option<serde_json::Value>) -> bool {
    matches!(value, None | Some(serde_json::Value::Null))
}

/// `skip_serializing_if` for Go's `omitempty` on a number.
pub fn is_zero_i64(value: &i64) -> bool {
    *value == 0
}

/// `skip_serializing_if` for Go's `omitempty` on a bool.
pub fn is_false(value: &bool) -> bool {
    !*value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(remote = "Self", default)]
    struct Probe {
        #[serde(rename = "LSN")]
        lsn: Option<u64>,
        #[serde(rename = "PgVersion", deserialize_with = "nullable")]
        pg_version: u32,
        #[serde(rename = "Spec")]
        spec: Option<String>,
        #[serde(rename = "Files", deserialize_with = "nullable")]
        files: BTreeMap<String, u32>,
    }

    impl Serialize for Probe {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Probe::serialize(self, s)
        }
    }

    impl<'de> Deserialize<'de> for Probe {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Probe::deserialize(CaseInsensitive(d))
        }
    }

    #[test]
    fn keys_match_fields_ignoring_case() {
        let p: Probe = serde_json::from_str(
            r#"{"lsn": 5, "pgversion": 160004, "spec": "x", "Unknown": [1], "files": {"Ab": 1, "ab": 2}}"#,
        )
        .unwrap();
        assert_eq!(p.lsn, Some(5));
        assert_eq!(p.pg_version, 160004);
        assert_eq!(p.spec.as_deref(), Some("x"));
        // Map keys are data, not field names: kept as they are.
        assert_eq!(p.files.len(), 2);
        let p: Probe = serde_json::from_str(r#"{"PgVersion": null, "LSN": null}"#).unwrap();
        assert_eq!(p, Probe::default());
        assert!(serde_json::from_str::<Probe>("[1]").is_err());
        assert!(serde_json::from_str::<Probe>(r#"{"LSN": "x"}"#).is_err());
    }

    #[test]
    fn writes_like_go_v1() {
        let value = serde_json::json!({"b": "<a&b>\u{2028}", "a": [1.0, 0.5, 1e21, 1.5e-7, 1e-10, 123456789.0, -0.0, 3]});
        let text = String::from_utf8(to_vec_v1(&value).unwrap()).unwrap();
        assert_eq!(
            text,
            r#"{"a":[1,0.5,1e+21,1.5e-7,1e-10,123456789,-0,3],"b":"\u003ca\u0026b\u003e\u2028"}"#
        );
        let text = String::from_utf8(to_vec_v1_indented(&value["a"], "    ").unwrap()).unwrap();
        assert!(text.starts_with("[\n    1,\n    0.5,"));
        let empty: Vec<u8> = Vec::new();
        assert_eq!(to_vec_v1_indented(&empty, "    ").unwrap(), b"[]");
        assert_eq!(to_vec_v1(&"\n\t\u{1}\"\\").unwrap(), br#""\n\t\u0001\"\\""#);
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1e20), "100000000000000000000");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1.25e100), "1.25e+100");
        assert_eq!(go_float(0.000001), "0.000001");
        assert_eq!(go_float(0.0000001), "1e-7");
        assert_eq!(go_float(1e-100), "1e-100");
        assert_eq!(go_float(-2.5), "-2.5");
    }
}
