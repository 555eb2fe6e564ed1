//! The password file (`PGPASSFILE`, else `~/.pgpass`), read as libpq reads it: lines
//! `host:port:database:user:password`; a field that is exactly `*` matches anything; `\` escapes
//! `:` and `\`; lines starting with `#` are comments; the first matching line wins. A file that
//! group or others may read is ignored with a warning, like libpq does.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::util::secret::Secret;

/// What a password file line is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassfileKey<'a> {
    /// A host name, or `localhost` for the default socket directories, or a socket directory.
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// One field of a line: its de-escaped text, or the wildcard.
#[derive(Debug, PartialEq, Eq)]
enum Field {
    Any,
    Text(String),
}

impl Field {
    fn matches(&self, value: &str) -> bool {
        match self {
            Field::Any => true,
            Field::Text(text) => text == value,
        }
    }
}

/// Splits a line into its four key fields and the password; `None` when it has fewer than four
/// unescaped `:`. The password ends at the next unescaped `:`, if any (as in libpq).
fn parse_line(line: &str) -> Option<([Field; 4], String)> {
    let mut fields: Vec<Field> = Vec::with_capacity(4);
    let mut current = String::new();
    let mut raw_star = true;
    let mut raw_len = 0usize;
    let mut chars = line.chars();
    while fields.len() < 4 {
        let c = chars.next()?;
        match c {
            '\\' => {
                raw_star = false;
                raw_len += 1;
                if let Some(next) = chars.next() {
                    current.push(next);
                    raw_len += 1;
                }
            }
            ':' => {
                let text = std::mem::take(&mut current);
                let field = if raw_star && raw_len == 1 {
                    Field::Any
                } else {
                    Field::Text(text)
                };
                fields.push(field);
                raw_star = true;
                raw_len = 0;
            }
            other => {
                raw_star = raw_star && other == '*';
                raw_len += 1;
                current.push(other);
            }
        }
    }
    let mut password = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => password.push(next),
                None => password.push('\\'),
            },
            ':' => break,
            other => password.push(other),
        }
    }
    let [a, b, c, d]: [Field; 4] = fields.try_into().ok()?;
    Some(([a, b, c, d], password))
}

/// The password of the first line of `text` matching `key`. An empty password counts as none.
pub fn find_password(text: &str, key: &PassfileKey<'_>) -> Option<Secret> {
    let port = key.port.to_string();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(([host, p, database, user], password)) = parse_line(line) else {
            continue;
        };
        if host.matches(key.host)
            && p.matches(&port)
            && database.matches(key.database)
            && user.matches(key.user)
        {
            return (!password.is_empty()).then(|| Secret::new(password));
        }
    }
    None
}

/// Looks `key` up in the password file at `path`. A missing file is no password; an unsafe or
/// unreadable one is skipped with a warning (a connection without the password then fails with
/// a clear message of its own).
pub fn read_password(path: &Path, key: &PassfileKey<'_>) -> Option<Secret> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!("password file '{}' ignored: {e}", path.display());
            return None;
        }
    };
    if !meta.is_file() {
        tracing::warn!(
            "password file '{}' ignored: not a plain file",
            path.display()
        );
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(
            "password file '{}' ignored: group or others may read it; permissions should be u=rw (0600) or less",
            path.display()
        );
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => find_password(&text, key),
        Err(e) => {
            tracing::warn!("password file '{}' ignored: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn key<'a>(host: &'a str, port: u16, database: &'a str, user: &'a str) -> PassfileKey<'a> {
        PassfileKey {
            host,
            port,
            database,
            user,
        }
    }

    fn found(text: &str, k: &PassfileKey<'_>) -> Option<String> {
        find_password(text, k).map(|s| s.expose().to_string())
    }

    #[test]
    fn first_matching_line_wins() {
        let text = "# comment\n\
                    \n\
                    db1.example:5432:sales:alice:first\n\
                    *:5432:*:alice:second\n\
                    *:*:*:*:fallback\n";
        assert_eq!(
            found(text, &key("db1.example", 5432, "sales", "alice")).as_deref(),
            Some("first")
        );
        assert_eq!(
            found(text, &key("other", 5432, "hr", "alice")).as_deref(),
            Some("second")
        );
        assert_eq!(
            found(text, &key("other", 6543, "hr", "alice")).as_deref(),
            Some("fallback")
        );
        assert_eq!(found("a:1:b:c:d\n", &key("a", 2, "b", "c")), None);
    }

    #[test]
    fn escapes_and_wildcards() {
        // `\:` and `\\` in key fields and the password; `\*` is a literal star.
        let text = r"host\:x:5432:d\\b:u:pa\:ss\\word";
        assert_eq!(
            found(text, &key("host:x", 5432, r"d\b", "u")).as_deref(),
            Some(r"pa:ss\word")
        );
        let text = r"\*:5432:db:u:literal";
        assert_eq!(found(text, &key("other", 5432, "db", "u")), None);
        assert_eq!(
            found(text, &key("*", 5432, "db", "u")).as_deref(),
            Some("literal")
        );
        // `**` is not a wildcard.
        assert_eq!(found("**:5432:db:u:p", &key("x", 5432, "db", "u")), None);
        // The password ends at the next unescaped colon.
        assert_eq!(
            found("h:1:d:u:secret:extra", &key("h", 1, "d", "u")).as_deref(),
            Some("secret")
        );
    }

    #[test]
    fn short_lines_and_empty_passwords() {
        assert_eq!(found("h:1:d:u", &key("h", 1, "d", "u")), None);
        assert_eq!(found("h:1:d:u:", &key("h", 1, "d", "u")), None);
        assert_eq!(
            found("h:1:d:u:\r\n", &key("h", 1, "d", "u")).as_deref(),
            None
        );
        assert_eq!(
            found("h:1:d:u:pw\r\n", &key("h", 1, "d", "u")).as_deref(),
            Some("pw")
        );
        assert_eq!(found("", &key("h", 1, "d", "u")), None);
    }

    #[test]
    fn files_group_or_others_may_read_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        let k = key("localhost", 5432, "postgres", "postgres");
        assert!(read_password(&path, &k).is_none(), "missing file");
        fs::write(&path, "localhost:5432:postgres:postgres:pw\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_password(&path, &k).is_none(), "0644 must be ignored");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_password(&path, &k).unwrap().expose(), "pw");
        assert!(read_password(dir.path(), &k).is_none(), "a directory");
    }
}
