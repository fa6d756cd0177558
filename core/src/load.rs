//! The scenario file format (TOML) and errors that point at the mistake.
//!
//! Parsing has two stages. Serde reads the TOML into [`Scenario`], denying unknown
//! fields; its errors carry the byte span and the field path. Then [`validate`] checks
//! what types cannot say (ranges, exclusive fields, references between sections) and
//! names each problem by its field path; the path is turned back into a line and
//! column by walking a span-keeping parse of the same text, done only when there is
//! an error to place, so valid files pay for one parse.

use crate::scenario::{FaultKind, FaultTarget, Scenario};
use crate::wire::is_valid_tenant_hash;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;

/// A scenario that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file as given.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file was read but is not a valid scenario: one diagnostic per problem found.
    #[error("{}", display_all(.0))]
    Invalid(Vec<Diagnostic>),
}

fn display_all(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl ScenarioError {
    /// The diagnostics, if the file was readable.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            ScenarioError::Io { .. } => &[],
            ScenarioError::Invalid(d) => d,
        }
    }
}

/// One problem in a scenario file, placed at its line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// The field path, such as `tenants[1].streaming_percentage` (empty for the whole file).
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
    /// The offending source line.
    pub source_line: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        writeln!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.column, path, self.message
        )?;
        let gutter = self.line.to_string().len();
        let (shown, column) = window(&self.source_line, self.column);
        writeln!(f, "{:gutter$} |", "")?;
        writeln!(f, "{} | {}", self.line, shown)?;
        write!(f, "{:gutter$} | {:>col$}", "", "^", col = column)
    }
}

/// The widest source line a diagnostic shows whole.
const SHOWN_CHARS: usize = 100;

/// `line` as a diagnostic shows it, and the caret's column in what is shown: a longer
/// line (an answer's text of 10,000 tokens is one line) is cut to the `SHOWN_CHARS`
/// around `column`, with `…` where it was cut.
fn window(line: &str, column: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= SHOWN_CHARS {
        return (line.to_owned(), column);
    }
    let at = column.saturating_sub(1).min(chars.len());
    let end = (at.saturating_sub(SHOWN_CHARS / 2) + SHOWN_CHARS).min(chars.len());
    let start = end - SHOWN_CHARS;
    let mut shown = String::new();
    let mut caret = at - start.min(at) + 1;
    if start > 0 {
        shown.push('…');
        caret += 1;
    }
    shown.extend(&chars[start..end]);
    if end < chars.len() {
        shown.push('…');
    }
    (shown, caret)
}

/// Reads and validates a scenario file.
pub fn load_file(path: &Path) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
        file: file.clone(),
        source,
    })?;
    parse_scenario(&file, &text)
}

/// Parses and validates a scenario from text; `file` names it in errors.
pub fn parse_scenario(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| {
        ScenarioError::Invalid(vec![place(
            file,
            text,
            e.span(),
            String::new(),
            clean(e.message()),
        )])
    })?;
    let scenario: Scenario = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        let inner = e.into_inner();
        let span = inner.span().or_else(|| locate(text, &parse_path(&path)));
        ScenarioError::Invalid(vec![place(file, text, span, path, clean(inner.message()))])
    })?;
    let problems = validate(&scenario);
    if problems.is_empty() {
        return Ok(scenario);
    }
    let diagnostics = problems
        .into_iter()
        .map(|(path, message)| {
            let span = locate(text, &parse_path(&path));
            place(file, text, span, path, message)
        })
        .collect();
    Err(ScenarioError::Invalid(diagnostics))
}

/// toml's messages end with a newline; ours are one line.
fn clean(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn place(
    file: &str,
    text: &str,
    span: Option<Range<usize>>,
    path: String,
    message: String,
) -> Diagnostic {
    let offset = span.map_or(0, |s| s.start.min(text.len()));
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    // A span on the line break of a CRLF file starts after the CR: the CR is not part
    // of the line shown, so it takes no column (else the caret lands past the line).
    let column = before[line_start..].trim_end_matches('\r').chars().count() + 1;
    let source_line = text[line_start..].lines().next().unwrap_or("").to_owned();
    Diagnostic {
        file: file.to_owned(),
        line,
        column,
        path,
        message,
        source_line,
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Reads `tenants[1].allowed_origins[0]` back into segments.
fn parse_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                segments.push(Segment::Key(rest[..open].to_owned()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(i) = stripped[..close].parse() {
                    segments.push(Segment::Index(i));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else {
            segments.push(Segment::Key(rest.to_owned()));
        }
    }
    segments
}

/// The span of the deepest part of `path` present in the text.
fn locate(text: &str, path: &[Segment]) -> Option<Range<usize>> {
    use toml_edit::{Item, Table, Value};
    let doc = toml_edit::Document::parse(text).ok()?;
    /// Where the walk stands: a table (top level or `[[array]]` element), an item, or an inline value.
    enum Node<'a> {
        Table(&'a Table),
        Item(&'a Item),
        Value(&'a Value),
    }
    let mut node = Node::Table(doc.as_table());
    let mut best: Option<Range<usize>> = None;
    for segment in path {
        let (next, span) = match (node, segment) {
            (Node::Table(t) | Node::Item(Item::Table(t)), Segment::Key(k)) => {
                match t.get_key_value(k) {
                    Some((key, item)) => (
                        Node::Item(item),
                        item.as_value().and_then(Value::span).or(key.span()),
                    ),
                    None => break,
                }
            }
            (
                Node::Item(Item::Value(Value::InlineTable(t))) | Node::Value(Value::InlineTable(t)),
                Segment::Key(k),
            ) => match t.get_key_value(k) {
                Some((key, item)) => (
                    Node::Item(item),
                    item.as_value().and_then(Value::span).or(key.span()),
                ),
                None => break,
            },
            (Node::Item(Item::ArrayOfTables(a)), Segment::Index(i)) => match a.get(*i) {
                Some(t) => (Node::Table(t), t.span()),
                None => break,
            },
            (
                Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)),
                Segment::Index(i),
            ) => match a.get(*i) {
                Some(v) => (Node::Value(v), v.span()),
                None => break,
            },
            _ => break,
        };
        best = span.or(best);
        node = next;
    }
    best
}

/// The checks that types cannot express. Returns `(field path, message)` pairs.
pub fn validate(s: &Scenario) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut err = |path: String, message: String| out.push((path, message));

    if s.seed > i64::MAX as u64 {
        err(
            "seed".into(),
            format!("expected at most {}, got {}", i64::MAX, s.seed),
        );
    }
    for (i, m) in s.models.iter().enumerate() {
        if m.is_empty() || m.contains(char::is_whitespace) {
            err(
                format!("models[{i}]"),
                format!(
                    "expected a Bedrock model id such as {:?}, got {m:?}",
                    crate::scenario::DEFAULT_MODEL
                ),
            );
        }
    }
    if s.tenants.is_empty() {
        err("tenants".into(), "expected at least one tenant".into());
    }
    let mut hashes = BTreeSet::new();
    for (i, t) in s.tenants.iter().enumerate() {
        let p = format!("tenants[{i}]");
        if !is_valid_tenant_hash(&t.hash) {
            err(
                format!("{p}.hash"),
                format!("expected 1-64 characters of a-z0-9, got {:?}", t.hash),
            );
        } else if !hashes.insert(t.hash.as_str()) {
            err(
                format!("{p}.hash"),
                format!("tenant {:?} is defined twice", t.hash),
            );
        }
        if !(t.streaming_percentage.is_finite() && (0.0..=100.0).contains(&t.streaming_percentage))
        {
            err(
                format!("{p}.streaming_percentage"),
                format!(
                    "expected a percentage from 0 to 100, got {}",
                    t.streaming_percentage
                ),
            );
        }
        if t.streaming_model.trim().is_empty() {
            err(
                format!("{p}.streaming_model"),
                "expected a Bedrock model id, got an empty string".into(),
            );
        }
        for (j, o) in t.allowed_origins.iter().enumerate() {
            if let Err(why) = check_origin(o) {
                err(format!("{p}.allowed_origins[{j}]"), why);
            }
        }
    }

    let mut answer_ids = BTreeSet::new();
    for (i, a) in s.answers.iter().enumerate() {
        let p = format!("answers[{i}]");
        if !answer_ids.insert(a.id.as_str()) {
            err(
                format!("{p}.id"),
                format!("answer {:?} is defined twice", a.id),
            );
        }
        if a.prompt.is_some() && a.pattern.is_some() {
            err(
                format!("{p}.pattern"),
                "expected either `prompt` or `pattern`, not both".into(),
            );
        }
        if let Some(pattern) = &a.pattern
            && let Err(e) = regex::Regex::new(pattern)
        {
            err(
                format!("{p}.pattern"),
                format!("not a valid regular expression: {}", clean(&e.to_string())),
            );
        }
        match (&a.text, a.tokens.is_empty()) {
            (Some(_), false) => err(
                format!("{p}.tokens"),
                "expected either `tokens` or `text`, not both".into(),
            ),
            (None, true) => err(
                p.clone(),
                "expected the answer as `tokens` or as `text`".into(),
            ),
            (None, false) if a.pacing.is_some() => err(
                format!("{p}.pacing"),
                "`pacing` applies to `text`; `tokens` carry their own delays".into(),
            ),
            _ => {}
        }
    }

    let mut session_ids = BTreeSet::new();
    for (i, session) in s.sessions.iter().enumerate() {
        let p = format!("sessions[{i}]");
        if !session_ids.insert(session.id.as_str()) {
            err(
                format!("{p}.id"),
                format!("session {:?} is defined twice", session.id),
            );
        }
        if session.id.is_empty() {
            err(format!("{p}.id"), "expected a non-empty session id".into());
        }
        if s.tenant(&session.tenant).is_none() {
            err(
                format!("{p}.tenant"),
                unknown(
                    "tenant",
                    &session.tenant,
                    s.tenants.iter().map(|t| t.hash.as_str()),
                ),
            );
        }
        if let Some(origin) = &session.origin
            && let Err(why) = check_origin(origin)
        {
            err(format!("{p}.origin"), why);
        }
        let mut message_ids = BTreeSet::new();
        for (j, m) in session.messages.iter().enumerate() {
            if !message_ids.insert(m.id.as_str()) {
                err(
                    format!("{p}.messages[{j}].id"),
                    format!("message {:?} appears twice in this session", m.id),
                );
            }
            if m.id.is_empty() {
                err(
                    format!("{p}.messages[{j}].id"),
                    "expected a non-empty message id".into(),
                );
            }
        }
    }

    for (i, c) in s.config_changes.iter().enumerate() {
        let p = format!("config_changes[{i}]");
        if let Some(t) = &c.tenant
            && s.tenant(t).is_none()
        {
            err(
                format!("{p}.tenant"),
                unknown("tenant", t, s.tenants.iter().map(|t| t.hash.as_str())),
            );
        }
        if c.streaming_percentage.is_none() && c.streaming_enabled.is_none() {
            err(
                p.clone(),
                "expected `streaming_percentage` or `streaming_enabled` (or both)".into(),
            );
        }
        if let Some(pc) = c.streaming_percentage
            && !(pc.is_finite() && (0.0..=100.0).contains(&pc))
        {
            err(
                format!("{p}.streaming_percentage"),
                format!("expected 0 to 100, got {pc}"),
            );
        }
    }

    let all_messages: BTreeSet<&str> = s
        .sessions
        .iter()
        .flat_map(|x| &x.messages)
        .map(|m| m.id.as_str())
        .collect();
    for (i, f) in s.faults.iter().enumerate() {
        let p = format!("faults[{i}]");
        if !f.kind.allowed_at(f.target) {
            let allowed: Vec<&str> = FaultKind::ALL
                .iter()
                .filter(|k| k.allowed_at(f.target))
                .map(|k| k.as_str())
                .collect();
            err(
                format!("{p}.kind"),
                format!(
                    "`{}` cannot strike at `{}`; expected one of: {}",
                    f.kind.as_str(),
                    f.target.as_str(),
                    allowed.join(", ")
                ),
            );
        }
        if f.kind.needs_delay() && f.delay_ms.is_none() {
            err(p.clone(), format!("`{}` needs `delay_ms`", f.kind.as_str()));
        }
        if f.delay_ms.is_some() && !f.kind.needs_delay() && f.kind != FaultKind::Stall {
            err(
                format!("{p}.delay_ms"),
                format!("`{}` takes no `delay_ms`", f.kind.as_str()),
            );
        }
        match (f.kind == FaultKind::Status, f.status) {
            (true, None) => err(
                p.clone(),
                "`status` needs `status` (an HTTP status from 400 to 599)".into(),
            ),
            (true, Some(code)) if !(400..=599).contains(&code) => err(
                format!("{p}.status"),
                format!("expected an HTTP error status from 400 to 599, got {code}"),
            ),
            (false, Some(_)) => err(
                format!("{p}.status"),
                format!("`{}` takes no `status`", f.kind.as_str()),
            ),
            _ => {}
        }
        if f.after_tokens.is_some() && !f.kind.takes_after_tokens() {
            err(
                format!("{p}.after_tokens"),
                format!("`{}` takes no `after_tokens`", f.kind.as_str()),
            );
        }
        if let Some(ex) = &f.exception {
            if f.kind != FaultKind::Exception {
                err(
                    format!("{p}.exception"),
                    format!("`{}` takes no `exception`", f.kind.as_str()),
                );
            } else if !BEDROCK_STREAM_EXCEPTIONS.contains(&ex.as_str()) {
                err(
                    format!("{p}.exception"),
                    format!(
                        "expected one of: {}; got {ex:?}",
                        BEDROCK_STREAM_EXCEPTIONS.join(", ")
                    ),
                );
            }
        }
        if f.target != FaultTarget::Bedrock {
            if f.via.is_some() {
                err(
                    format!("{p}.via"),
                    "`via` applies to faults `where = \"bedrock\"` only".into(),
                );
            }
            if f.attempts.is_some() {
                err(
                    format!("{p}.attempts"),
                    "`attempts` applies to faults `where = \"bedrock\"` only".into(),
                );
            }
            if f.model.is_some() {
                err(
                    format!("{p}.model"),
                    "`model` applies to faults `where = \"bedrock\"` only".into(),
                );
            }
        }
        if let Some(model) = &f.model {
            if model.is_empty() || model.chars().any(char::is_whitespace) {
                err(
                    format!("{p}.model"),
                    format!("expected a model id, got {model:?}"),
                );
            } else if !s.knows_model(model) {
                err(
                    format!("{p}.model"),
                    format!(
                        "model {model:?} is not in `models` (nor a tenant's or an answer's): calls to it are refused before any fault"
                    ),
                );
            }
        }
        if f.attempts == Some(0) {
            err(format!("{p}.attempts"), "expected at least 1".into());
        }
        if f.times == Some(0) {
            err(format!("{p}.times"), "expected at least 1".into());
        }
        if let Some(prob) = f.probability
            && !(prob.is_finite() && (0.0..=1.0).contains(&prob))
        {
            err(
                format!("{p}.probability"),
                format!("expected a probability from 0 to 1, got {prob}"),
            );
        }
        if let Some(t) = &f.tenant
            && s.tenant(t).is_none()
        {
            err(
                format!("{p}.tenant"),
                unknown("tenant", t, s.tenants.iter().map(|t| t.hash.as_str())),
            );
        }
        let session = f
            .session
            .as_ref()
            .map(|id| (id, s.sessions.iter().find(|x| &x.id == id)));
        if let Some((id, None)) = session {
            err(
                format!("{p}.session"),
                unknown("session", id, s.sessions.iter().map(|x| x.id.as_str())),
            );
        }
        if let Some(m) = &f.message {
            let known = match session {
                Some((_, Some(sess))) => sess.messages.iter().any(|x| &x.id == m),
                _ => all_messages.contains(m.as_str()),
            };
            if !known && !s.sessions.is_empty() {
                err(
                    format!("{p}.message"),
                    format!("no message {m:?} in the scenario's sessions"),
                );
            }
        }
    }

    if let Some(r) = &s.rollout {
        if s.tenant(&r.tenant).is_none() {
            err(
                "rollout.tenant".into(),
                unknown(
                    "tenant",
                    &r.tenant,
                    s.tenants.iter().map(|t| t.hash.as_str()),
                ),
            );
        }
        for (i, step) in r.steps.iter().enumerate() {
            if !(step.is_finite() && (0.0..=100.0).contains(step)) {
                err(
                    format!("rollout.steps[{i}]"),
                    format!("expected a percentage from 0 to 100, got {step}"),
                );
            } else if i > 0 && *step < r.steps[i - 1] {
                err(
                    format!("rollout.steps[{i}]"),
                    "expected the steps in increasing order".into(),
                );
            }
        }
        if r.steps.is_empty() {
            err("rollout.steps".into(), "expected at least one step".into());
        }
        if r.sessions_per_step == 0 {
            err(
                "rollout.sessions_per_step".into(),
                "expected at least 1".into(),
            );
        }
    }
    out.extend(crate::bounds::check(s));
    out
}

/// The exception types Bedrock may send mid-stream on both streaming operations.
pub const BEDROCK_STREAM_EXCEPTIONS: [&str; 5] = [
    "internalServerException",
    "modelStreamErrorException",
    "validationException",
    "throttlingException",
    "serviceUnavailableException",
];

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<&str> = known.collect();
    if known.is_empty() {
        format!("no {what} {name:?} is defined")
    } else {
        format!(
            "no {what} {name:?} is defined; expected one of: {}",
            known.join(", ")
        )
    }
}

/// An origin is `scheme://host[:port]`, with no path, no `*` and no `null`.
fn check_origin(origin: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "expected a full origin such as \"https://example.org\", got {origin:?}"
        ))
    };
    let Some((scheme, rest)) = origin.split_once("://") else {
        return bad();
    };
    if !matches!(scheme, "http" | "https")
        || rest.is_empty()
        || rest.contains(['/', '*', ' ', '?', '#'])
    {
        return bad();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(source_line: &str, column: usize) -> Diagnostic {
        Diagnostic {
            file: "f.toml".into(),
            line: 7,
            column,
            path: "answers[0].text".into(),
            message: "too long".into(),
            source_line: source_line.into(),
        }
    }

    /// The caret's line and the source line as printed.
    fn shown(d: &Diagnostic) -> (String, String) {
        let text = d.to_string();
        let lines: Vec<&str> = text.lines().collect();
        (lines[2].to_owned(), lines[3].to_owned())
    }

    #[test]
    fn a_short_line_is_shown_whole() {
        let d = diagnostic("text = \"hello\"", 8);
        let (source, caret) = shown(&d);
        assert_eq!(source, "7 | text = \"hello\"");
        assert_eq!(caret, "  |        ^");
    }

    /// A 10,000-token answer is one line: the diagnostic shows the hundred characters
    /// around the column, the caret still under the character it names.
    #[test]
    fn a_long_line_is_cut_around_the_column() {
        let line: String = (0..20_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        for column in [1, 60, 5_000, 19_990, 20_000] {
            let (source, caret) = shown(&diagnostic(&line, column));
            let source = source.strip_prefix("7 | ").expect("gutter");
            assert!(
                source.chars().count() <= SHOWN_CHARS + 2,
                "{column}: {source}"
            );
            let at = caret.strip_prefix("  | ").expect("gutter").chars().count();
            let under = source.chars().nth(at - 1).expect("caret inside");
            let named = line.chars().nth(column - 1).expect("column inside");
            assert_eq!(under, named, "column {column}");
            assert_eq!(
                source.starts_with('…'),
                column > SHOWN_CHARS / 2 + 1,
                "{column}"
            );
            assert_eq!(
                source.ends_with('…'),
                column < 20_000 - SHOWN_CHARS / 2,
                "{column}"
            );
        }
    }
}
