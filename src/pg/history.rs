//! Checks a timeline history file (`TTTTTTTT.history`) as its bytes stream by, the way
//! PostgreSQL reads it (timeline.c, `readTimeLineHistory`): each line that is not blank or a
//! `#` comment starts with a parent timeline, whitespace and a switch point `X/X`, then an
//! optional reason; the timelines increase and stay below the file's own. PostgreSQL writes
//! every line whole, so a file must end with a newline, and it never writes a NUL byte or an
//! empty history. Pure: no I/O; memory is bounded whatever the input.

/// Bytes of a line kept to parse its start; the rest (the reason) is only scanned.
const LINE_START: usize = 96;

/// Checks the history file `name`, fed in order.
#[derive(Debug)]
pub struct HistoryCheck {
    /// The timeline the file is the history of.
    child: u32,
    line: Vec<u8>,
    /// The current line is longer than [`LINE_START`]: its start was already checked.
    checked: bool,
    line_number: usize,
    last: Option<u32>,
    in_line: bool,
}

impl HistoryCheck {
    /// `None` when `name` is not a history file name.
    pub fn new(name: &str) -> Option<HistoryCheck> {
        let tli = name.strip_suffix(".history")?;
        if tli.len() != 8 || !tli.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        Some(HistoryCheck {
            child: u32::from_str_radix(tli, 16).ok()?,
            line: Vec::with_capacity(LINE_START),
            checked: false,
            line_number: 0,
            last: None,
            in_line: false,
        })
    }

    /// Feeds the next bytes.
    pub fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        for &byte in data {
            if byte == 0 {
                return Err(format!(
                    "line {}: a NUL byte: not a text file",
                    self.line_number + 1
                ));
            }
            if byte == b'\n' {
                self.end_line()?;
                continue;
            }
            self.in_line = true;
            if self.line.len() < LINE_START {
                self.line.push(byte);
            } else if !self.checked {
                self.check_line()?;
                self.checked = true;
            }
        }
        Ok(())
    }

    /// Checks the end of the file.
    pub fn finish(self) -> Result<(), String> {
        if self.in_line {
            return Err(format!(
                "line {}: the file ends in the middle of a line",
                self.line_number + 1
            ));
        }
        if self.last.is_none() {
            return Err("no timeline switch in it".to_string());
        }
        Ok(())
    }

    fn end_line(&mut self) -> Result<(), String> {
        if !self.checked {
            self.check_line()?;
        }
        self.line.clear();
        self.checked = false;
        self.in_line = false;
        self.line_number += 1;
        Ok(())
    }

    fn check_line(&mut self) -> Result<(), String> {
        let number = self.line_number + 1;
        let at = |what: &str| format!("line {number}: {what}");
        let text = &self.line;
        let mut i = text
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(text.len());
        if i == text.len() || text[i] == b'#' {
            if i == LINE_START {
                return Err(at("too much leading white space"));
            }
            return Ok(());
        }
        let digits = text[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        let tli = std::str::from_utf8(&text[i..i + digits])
            .ok()
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| at("does not start with a timeline number"))?;
        i += digits;
        i += text[i..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
        let hi = text[i..]
            .iter()
            .take_while(|c| c.is_ascii_hexdigit())
            .count();
        let slash = i + hi;
        let lo = text.get(slash + 1..).map_or(0, |rest| {
            rest.iter().take_while(|c| c.is_ascii_hexdigit()).count()
        });
        if hi == 0 || hi > 8 || text.get(slash) != Some(&b'/') || lo == 0 || lo > 8 {
            return Err(at("no switch point X/X after the timeline"));
        }
        if self.last.is_some_and(|last| tli <= last) {
            return Err(at("timelines are not in increasing order"));
        }
        if tli == 0 || tli >= self.child {
            return Err(at(&format!(
                "timeline {tli} is not a parent of timeline {}",
                self.child
            )));
        }
        self.last = Some(tli);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, data: &[u8], chunk: usize) -> Result<(), String> {
        let mut c = HistoryCheck::new(name).expect("a history name");
        for part in data.chunks(chunk) {
            c.feed(part)?;
        }
        c.finish()
    }

    #[test]
    fn history_files_postgresql_writes_pass() {
        let text = b"1\t0/3000108\tno recovery target specified\n\n2\t0/5000000\tbefore 2000-01-01 00:00:00+00\n";
        for chunk in [1, 3, 1000] {
            assert_eq!(check("00000003.history", text, chunk), Ok(()));
        }
        let long_reason = format!("1\t0/3000000\t{}\n", "x".repeat(5000));
        assert_eq!(
            check("00000002.history", long_reason.as_bytes(), 64),
            Ok(())
        );
        assert!(HistoryCheck::new("000000010000000000000001").is_none());
    }

    #[test]
    fn binary_truncated_or_inconsistent_history_is_refused() {
        for (name, data) in [
            (
                "00000002.history",
                &b"1\t0/3000108\tno recovery target\0\n"[..],
            ),
            ("00000002.history", b"1\t0/3000108\tno recovery target"),
            ("00000002.history", b""),
            ("00000002.history", b"\xD1\x10\x02\x00\x01\x00\x00\x00"),
            ("00000002.history", b"x\t0/3000108\treason\n"),
            ("00000002.history", b"1\t03000108\treason\n"),
            ("00000002.history", b"2\t0/3000108\treason\n"),
            ("00000003.history", b"2\t0/3000108\ta\n1\t0/4000000\tb\n"),
        ] {
            assert!(
                check(name, data, 7).is_err(),
                "{name} {:?} passed",
                String::from_utf8_lossy(data)
            );
        }
    }
}
