//! Golden transcripts for `run --snapshots DIR`: each job's transcript against
//! `DIR/transcript__<scenario>__<policy>.snap`.
//!
//! The files are in insta's format, byte for byte what `insta::assert_snapshot!` writes
//! (`---`, a YAML header, `---`, the text, one newline), so `snapshots/` serves both the
//! insta tests and `run`, and `cargo insta` reads what `--update-snapshots` writes. The
//! comparison is insta's too: trailing whitespace and CRLF line ends do not count, the
//! header does not count at all. A team keeps golden transcripts of its own scenarios
//! without writing a Rust test.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `source` of a snapshot `run` writes first: insta's field for the test file that
/// made it; here the command, since no test file did.
const SOURCE: &str = "picasso-sim run";

/// The snapshot file of one job: insta's name for `assert_snapshot!("transcript__…")`.
pub fn file_name(scenario: &str, policy: &str) -> String {
    format!("transcript__{scenario}__{policy}.snap")
}

/// Why a file is not an insta snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// Insta's files start with a `---` line.
    #[error("not an insta snapshot: the first line is not `---`")]
    NoHeader,
    /// The header ends at the second `---` line.
    #[error("not an insta snapshot: the `---` header is never closed")]
    Unclosed,
}

/// A snapshot file: insta's YAML header and the text it pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// The header's lines between the two `---` lines, each with its line end, kept
    /// verbatim so rewriting a changed snapshot changes only its text.
    pub header: String,
    /// The text, normalized as insta compares it.
    pub content: String,
}

impl SnapFile {
    /// Splits a file as insta's `Snapshot::from_file` does.
    pub fn parse(text: &str) -> Result<SnapFile, FormatError> {
        let mut lines = text.split_inclusive('\n');
        if lines.next().map(str::trim_end) != Some("---") {
            return Err(FormatError::NoHeader);
        }
        let mut header = String::new();
        loop {
            match lines.next() {
                None => return Err(FormatError::Unclosed),
                Some(line) if line.trim_end() == "---" => break,
                Some(line) => header.push_str(line),
            }
        }
        let rest: String = lines.collect();
        let content = rest.lines().collect::<Vec<_>>().join("\n");
        Ok(SnapFile {
            header,
            content: normalize(&content),
        })
    }

    /// A new snapshot of `content`, with the header `run` writes: the command as the
    /// source, and the scenario file as insta's `input_file`.
    pub fn fresh(input_file: &str, content: &str) -> SnapFile {
        SnapFile {
            header: format!(
                "source: {}\nexpression: transcript\ninput_file: {}\n",
                yaml_scalar(SOURCE),
                yaml_scalar(input_file)
            ),
            content: normalize(content),
        }
    }

    /// The file's bytes, laid out as insta's `Snapshot::save` lays them out.
    pub fn render(&self) -> String {
        format!("---\n{}---\n{}\n", self.header, self.content)
    }
}

/// Insta's normal form of a text snapshot: no trailing whitespace, LF line ends.
pub fn normalize(text: &str) -> String {
    text.trim_end().replace("\r\n", "\n")
}

/// A unified diff from the snapshot to this run, 3 lines of context.
pub fn unified_diff(snapshot_label: &str, expected: &str, actual: &str) -> String {
    let (expected, actual) = (format!("{expected}\n"), format!("{actual}\n"));
    similar::TextDiff::from_lines(&expected, &actual)
        .unified_diff()
        .context_radius(3)
        .header(snapshot_label, "this run")
        .to_string()
}

/// What checking one transcript against its snapshot found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The snapshot holds this transcript.
    Matches,
    /// `--update-snapshots` wrote the file: `new` when there was none.
    Written { new: bool },
    /// No snapshot file.
    Missing,
    /// The snapshot holds another transcript.
    Differs { diff: String },
    /// The file could not be read, parsed or written.
    Unusable { reason: String },
}

impl Verdict {
    /// Whether the job fails for it.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            Verdict::Missing | Verdict::Differs { .. } | Verdict::Unusable { .. }
        )
    }

    /// The failure, in words, naming the file; `None` when the job passes.
    pub fn failure(&self, path: &Path) -> Option<String> {
        let path = path.display();
        match self {
            Verdict::Matches | Verdict::Written { .. } => None,
            Verdict::Missing => Some(format!(
                "{path}: no such snapshot; run with --update-snapshots to write it"
            )),
            Verdict::Differs { diff } => Some(format!(
                "{path}: the transcript differs from the snapshot (-snapshot +this run); \
                 run with --update-snapshots to accept it\n{diff}"
            )),
            Verdict::Unusable { reason } => Some(format!("{path}: {reason}")),
        }
    }
}

/// One job's snapshot file and what checking it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCheck {
    /// The file.
    pub path: PathBuf,
    /// What was found.
    pub verdict: Verdict,
}

impl SnapshotCheck {
    /// The failure, in words, naming the file; `None` when the job passes.
    pub fn failure(&self) -> Option<String> {
        self.verdict.failure(&self.path)
    }
}

/// Decides, without touching the disk, what one transcript makes of its snapshot file
/// (`existing`, its text if there is one): the verdict and, when updating, the bytes to
/// write.
pub fn decide(
    label: &str,
    existing: Option<&str>,
    transcript: &str,
    input_file: &str,
    update: bool,
) -> (Verdict, Option<String>) {
    let actual = normalize(transcript);
    let parsed = existing.map(SnapFile::parse);
    if let Some(Ok(file)) = &parsed
        && file.content == actual
    {
        return (Verdict::Matches, None);
    }
    if update {
        let file = match parsed {
            Some(Ok(old)) => SnapFile {
                header: old.header,
                content: actual,
            },
            _ => SnapFile::fresh(input_file, &actual),
        };
        return (
            Verdict::Written {
                new: existing.is_none(),
            },
            Some(file.render()),
        );
    }
    let verdict = match parsed {
        None => Verdict::Missing,
        Some(Ok(file)) => Verdict::Differs {
            diff: unified_diff(label, &file.content, &actual),
        },
        Some(Err(e)) => Verdict::Unusable {
            reason: format!("{e}; run with --update-snapshots to rewrite it"),
        },
    };
    (verdict, None)
}

/// A directory of golden transcripts, checked or updated.
#[derive(Debug, Clone)]
pub struct GoldenDir {
    /// The directory.
    pub dir: PathBuf,
    /// Write new and changed snapshots instead of failing on them.
    pub update: bool,
}

impl GoldenDir {
    /// The snapshot file of one job.
    pub fn path_for(&self, scenario: &str, policy: &str) -> PathBuf {
        self.dir.join(file_name(scenario, policy))
    }

    /// Checks (or updates) the snapshot of one job's transcript.
    pub fn check(
        &self,
        scenario: &str,
        policy: &str,
        input_file: &str,
        transcript: &str,
    ) -> SnapshotCheck {
        let path = self.path_for(scenario, policy);
        let verdict = self.check_file(&path, input_file, transcript);
        SnapshotCheck { path, verdict }
    }

    fn check_file(&self, path: &Path, input_file: &str, transcript: &str) -> Verdict {
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => {
                return Verdict::Unusable {
                    reason: format!("cannot read: {e}"),
                };
            }
        };
        let label = path.display().to_string();
        let (verdict, write) = decide(
            &label,
            existing.as_deref(),
            transcript,
            input_file,
            self.update,
        );
        match write.map(|bytes| std::fs::write(path, bytes)) {
            Some(Err(e)) => Verdict::Unusable {
                reason: format!("cannot write: {e}"),
            },
            _ => verdict,
        }
    }
}

/// A YAML string as insta's emitter writes it: plain when YAML reads it back as the
/// same string, else double-quoted with insta's escapes.
fn yaml_scalar(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\0'..='\x1f' | '\x7f' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Insta's rule (its vendored emitter's `need_quotes`) for quoting a string.
fn needs_quotes(s: &str) -> bool {
    const WORDS: [&str; 22] = [
        "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false",
        "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    s.is_empty()
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@'])
        || s.contains(|c: char| {
            matches!(
                c,
                ':' | '{'
                    | '}'
                    | '['
                    | ']'
                    | ','
                    | '#'
                    | '`'
                    | '"'
                    | '\''
                    | '\\'
                    | '\0'..='\x06'
                    | '\t'
                    | '\n'
                    | '\r'
                    | '\x0e'..='\x1a'
                    | '\x1c'..='\x1f'
            )
        })
        || WORDS.contains(&s)
        || s.starts_with('.')
        || s.starts_with("0x")
        || s.parse::<i64>().is_ok()
        || s.parse::<f64>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHIPPED: &str = "transcript__happy-path__corrected.snap";

    fn shipped() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../snapshots")
            .join(SHIPPED);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A file insta wrote parses and renders back to the same bytes: `run` rewrites
    /// snapshots exactly as insta lays them out.
    #[test]
    fn an_insta_file_round_trips_byte_for_byte() {
        let text = shipped();
        let file = SnapFile::parse(&text).expect("insta's format");
        assert_eq!(
            file.header,
            "source: sim/tests/scenarios.rs\nexpression: outcome.transcript\n"
        );
        assert!(file.content.starts_with("# scenario \"happy-path\""));
        assert_eq!(file.render(), text);
    }

    #[test]
    fn comparison_ignores_trailing_whitespace_and_crlf_like_insta() {
        let snap = "---\nsource: x\n---\nline one\nline two\n";
        for transcript in [
            "line one\nline two",
            "line one\nline two\n\n\n",
            "line one\r\nline two\r\n",
        ] {
            assert_eq!(
                decide("f", Some(snap), transcript, "s.toml", false),
                (Verdict::Matches, None),
                "{transcript:?}"
            );
        }
        let crlf_file = "---\r\nsource: x\r\n---\r\nline one\r\nline two\r\n";
        assert_eq!(
            decide(
                "f",
                Some(crlf_file),
                "line one\nline two\n",
                "s.toml",
                false
            )
            .0,
            Verdict::Matches
        );
    }

    #[test]
    fn a_difference_is_a_unified_diff_from_snapshot_to_run() {
        let snap = "---\nsource: x\n---\na\nb\nc\nd\ne\nf\ng\nh\n";
        let (verdict, write) = decide(
            "dir/t.snap",
            Some(snap),
            "a\nb\nc\nd\nE\nf\ng\nh\n",
            "s",
            false,
        );
        assert_eq!(write, None);
        let Verdict::Differs { diff } = &verdict else {
            panic!("{verdict:?}")
        };
        assert_eq!(
            diff,
            "--- dir/t.snap\n+++ this run\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert!(verdict.failed());
        let message = verdict.failure(Path::new("dir/t.snap")).unwrap();
        assert!(message.contains("--update-snapshots"), "{message}");
        assert!(message.ends_with(diff.as_str()), "{message}");
    }

    #[test]
    fn a_missing_snapshot_fails_and_names_the_flag() {
        let (verdict, write) = decide("f", None, "text", "s.toml", false);
        assert_eq!((verdict.clone(), write), (Verdict::Missing, None));
        let message = verdict.failure(Path::new("golden/t.snap")).unwrap();
        assert_eq!(
            message,
            "golden/t.snap: no such snapshot; run with --update-snapshots to write it"
        );
    }

    #[test]
    fn a_file_not_in_insta_format_fails_and_update_rewrites_it() {
        let (verdict, _) = decide("f", Some("just text\n"), "text", "s.toml", false);
        assert!(
            matches!(&verdict, Verdict::Unusable { reason } if reason.contains("not an insta snapshot"))
        );
        let (verdict, write) = decide("f", Some("---\nsource: x\n"), "text", "s.toml", true);
        assert_eq!(verdict, Verdict::Written { new: false });
        assert_eq!(
            write.as_deref(),
            Some(
                "---\nsource: picasso-sim run\nexpression: transcript\ninput_file: s.toml\n---\ntext\n"
            )
        );
    }

    /// Updating keeps a changed file's header, so a snapshot insta wrote changes only in
    /// its text; a new file gets `run`'s header.
    #[test]
    fn update_writes_new_and_changed_files_and_keeps_headers() {
        let old = "---\nsource: sim/tests/scenarios.rs\nexpression: outcome.transcript\n---\nold\n";
        let (verdict, write) = decide("f", Some(old), "new\n", "s.toml", true);
        assert_eq!(verdict, Verdict::Written { new: false });
        assert_eq!(
            write.as_deref(),
            Some("---\nsource: sim/tests/scenarios.rs\nexpression: outcome.transcript\n---\nnew\n")
        );
        let (verdict, write) = decide("f", None, "new\n", "<default>", true);
        assert_eq!(verdict, Verdict::Written { new: true });
        assert!(!verdict.failed());
        assert_eq!(
            write.as_deref(),
            Some(
                "---\nsource: picasso-sim run\nexpression: transcript\ninput_file: \"<default>\"\n---\nnew\n"
            )
        );
        // An unchanged file is not rewritten.
        assert_eq!(
            decide("f", Some(old), "old", "s.toml", true),
            (Verdict::Matches, None)
        );
    }

    #[test]
    fn yaml_scalars_are_quoted_where_insta_quotes_them() {
        assert_eq!(
            yaml_scalar("scenarios/happy-path.toml"),
            "scenarios/happy-path.toml"
        );
        assert_eq!(yaml_scalar("picasso-sim run"), "picasso-sim run");
        assert_eq!(yaml_scalar("<default>"), "\"<default>\"");
        assert_eq!(yaml_scalar("C:\\x y.toml"), "\"C:\\\\x y.toml\"");
        assert_eq!(yaml_scalar("a\"b#"), "\"a\\\"b#\"");
        assert_eq!(yaml_scalar("tab\there"), "\"tab\\there\"");
        assert_eq!(yaml_scalar("soh\x01"), "\"soh\\u0001\"");
        assert_eq!(yaml_scalar("42"), "\"42\"");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(yaml_scalar(""), "\"\"");
        assert_eq!(yaml_scalar("été.toml"), "été.toml");
    }

    #[test]
    fn file_names_follow_the_insta_tests() {
        assert_eq!(file_name("happy-path", "corrected"), SHIPPED);
    }
}
