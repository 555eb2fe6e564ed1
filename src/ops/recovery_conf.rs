//! The recovery configuration `backup-fetch` can write, so that starting PostgreSQL is the only
//! step left: `recovery.signal`, a `restore_command` that runs this walg with the same
//! settings, and an optional recovery target, appended to `postgresql.auto.conf`.
//!
//! WAL-G writes none of this; the plain WAL-G procedure (writing the same lines by hand) stays
//! valid and is described in docs/restore.md.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};

/// Where recovery should stop, and what to do there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryTarget {
    /// `recovery_target_time`, e.g. `2026-11-24 10:00:00+00`.
    pub time: Option<String>,
    /// `recovery_target_lsn`, e.g. `0/3000060`.
    pub lsn: Option<String>,
    /// `recovery_target_name`: a restore point made with `pg_create_restore_point`.
    pub name: Option<String>,
    /// `recovery_target_action`: `pause`, `promote` or `shutdown`.
    pub action: Option<String>,
    /// `recovery_target_timeline`: `latest`, `current` or a number.
    pub timeline: Option<String>,
}

impl RecoveryTarget {
    /// Checks the combination PostgreSQL accepts: at most one target, a known action.
    pub fn validate(&self) -> anyhow::Result<()> {
        let targets = [&self.time, &self.lsn, &self.name]
            .iter()
            .filter(|t| t.is_some())
            .count();
        if targets > 1 {
            bail!("give at most one of --target-time, --target-lsn and --target-name");
        }
        if let Some(action) = &self.action {
            if !["pause", "promote", "shutdown"].contains(&action.as_str()) {
                bail!("--target-action must be pause, promote or shutdown, not '{action}'");
            }
            if targets == 0 {
                bail!(
                    "--target-action needs a target (--target-time, --target-lsn or --target-name)"
                );
            }
        }
        if let Some(lsn) = &self.lsn
            && crate::pg::Lsn::parse(lsn).is_none()
        {
            bail!("--target-lsn '{lsn}' is not an LSN such as 0/3000060");
        }
        if let Some(time) = &self.time
            && time.trim().is_empty()
        {
            bail!("--target-time is empty");
        }
        if let Some(timeline) = &self.timeline
            && !(timeline == "latest" || timeline == "current" || timeline.parse::<u32>().is_ok())
        {
            bail!(
                "--target-timeline must be latest, current or a timeline number, not '{timeline}'"
            );
        }
        Ok(())
    }
}

/// Quotes one word for `/bin/sh`.
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Quotes a value for `postgresql.conf`.
fn conf_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `restore_command`: this walg with the given global arguments, then `wal-fetch %f %p`.
pub fn restore_command(exe: &Path, global_args: &[String]) -> String {
    let mut line = shell_quote(&exe.display().to_string());
    for arg in global_args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    line.push_str(" wal-fetch %f %p");
    line
}

/// The lines appended to `postgresql.auto.conf`.
pub fn render(restore_command: &str, target: &RecoveryTarget) -> String {
    let mut out = String::from("\n# Added by walg backup-fetch: archive recovery through walg.\n");
    let mut set = |key: &str, value: &str| {
        let _ = writeln!(out, "{key} = {}", conf_quote(value));
    };
    set("restore_command", restore_command);
    if let Some(time) = &target.time {
        set("recovery_target_time", time);
    }
    if let Some(lsn) = &target.lsn {
        set("recovery_target_lsn", lsn);
    }
    if let Some(name) = &target.name {
        set("recovery_target_name", name);
    }
    if let Some(action) = &target.action {
        set("recovery_target_action", action);
    }
    if let Some(timeline) = &target.timeline {
        set("recovery_target_timeline", timeline);
    }
    out
}

/// Appends the configuration to `<dir>/postgresql.auto.conf`, creates `<dir>/recovery.signal`,
/// and fsyncs both and the folder.
pub fn write(dir: &Path, restore_command: &str, target: &RecoveryTarget) -> anyhow::Result<()> {
    target.validate()?;
    let auto_conf = dir.join("postgresql.auto.conf");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&auto_conf)
        .with_context(|| format!("opening '{}'", auto_conf.display()))?;
    file.write_all(render(restore_command, target).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing '{}'", auto_conf.display()))?;
    let signal = dir.join("recovery.signal");
    std::fs::File::create(&signal)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("creating '{}'", signal.display()))?;
    crate::storage::fs::sync_dir(dir).with_context(|| format!("syncing '{}'", dir.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_the_shell_and_the_config_parser() {
        assert_eq!(shell_quote("/usr/bin/walg"), "/usr/bin/walg");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let cmd = restore_command(
            Path::new("/opt/wal g/walg"),
            &["--walg-file-prefix".into(), "/backups/it's".into()],
        );
        assert_eq!(
            cmd,
            r"'/opt/wal g/walg' --walg-file-prefix '/backups/it'\''s' wal-fetch %f %p"
        );
        let conf = render(&cmd, &RecoveryTarget::default());
        assert!(conf.contains(r"restore_command = '''/opt/wal g/walg'' --walg-file-prefix ''/backups/it''\''''s'' wal-fetch %f %p'"), "{conf}");
    }

    #[test]
    fn the_shell_sees_the_original_words() {
        let cmd = restore_command(Path::new("printf"), &["%s|".into(), "it's a test".into()]);
        let cmd = cmd.replace(" wal-fetch %f %p", "");
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(&cmd)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's a test|");
    }

    #[test]
    fn targets() {
        let target = RecoveryTarget {
            time: Some("2026-11-24 10:00:00+00".into()),
            action: Some("promote".into()),
            ..RecoveryTarget::default()
        };
        target.validate().unwrap();
        let conf = render("walg wal-fetch %f %p", &target);
        assert!(conf.contains("recovery_target_time = '2026-11-24 10:00:00+00'\n"));
        assert!(conf.contains("recovery_target_action = 'promote'\n"));

        let two = RecoveryTarget {
            time: Some("x".into()),
            name: Some("y".into()),
            ..RecoveryTarget::default()
        };
        assert!(two.validate().is_err());
        // PostgreSQL's own reading: 1 to 8 hex digits on each side, nothing else.
        for bad in ["12345", "+1/0", "0/+1", "000000001/0", "0/1 ", "0/"] {
            let bad_lsn = RecoveryTarget {
                lsn: Some(bad.into()),
                ..RecoveryTarget::default()
            };
            assert!(bad_lsn.validate().is_err(), "{bad}");
        }
        let good_lsn = RecoveryTarget {
            lsn: Some("16/b374d848".into()),
            ..RecoveryTarget::default()
        };
        assert!(good_lsn.validate().is_ok());
        let action_alone = RecoveryTarget {
            action: Some("promote".into()),
            ..RecoveryTarget::default()
        };
        assert!(action_alone.validate().is_err());
        let bad_action = RecoveryTarget {
            lsn: Some("0/3000060".into()),
            action: Some("explode".into()),
            ..RecoveryTarget::default()
        };
        assert!(bad_action.validate().is_err());
        let timeline = RecoveryTarget {
            timeline: Some("lastest".into()),
            ..RecoveryTarget::default()
        };
        assert!(timeline.validate().is_err());
    }

    #[test]
    fn write_appends_and_signals() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "work_mem = '8MB'\n",
        )
        .unwrap();
        write(
            dir.path(),
            "walg wal-fetch %f %p",
            &RecoveryTarget::default(),
        )
        .unwrap();
        let conf = std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert!(conf.starts_with("work_mem = '8MB'\n"));
        assert!(conf.contains("restore_command = 'walg wal-fetch %f %p'"));
        assert!(dir.path().join("recovery.signal").is_file());
    }
}
