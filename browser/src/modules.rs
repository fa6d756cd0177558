//! A widget's modules: the entry file and what it imports, read once per run and kept
//! (rquickjs's stock loader forgets a module after its first load, and every session
//! is a fresh realm that loads them again).
//!
//! Resolution: `react` is the hooks shim (`js/react.js`); `./x.js` and `../x.js` are
//! files relative to the importing module; an import with `with { type: 'text' }` is
//! the file's text as the default export (how the as-written adapter runs the design
//! document's `sendMessage` fragment, which is not a module, unchanged). Nothing else
//! resolves: a widget cannot reach the file system or the network through imports.

use crate::bytecode::{BytecodeCache, Source};
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::{Ctx, Error, Module, Result};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

const REACT: &str = include_str!("js/react.js");
/// The module name `react` resolves to.
const REACT_NAME: &str = "react";
const TEXT_SUFFIX: &str = "?text";

/// Why a widget's files could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The entry file is unreadable.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A widget: its entry module, a cache of every file it imports, and each module
/// compiled once (shared by every runtime and realm that loads this widget).
#[derive(Debug, Clone)]
pub struct WidgetSource {
    entry: String,
    files: Arc<Mutex<BTreeMap<String, String>>>,
    bytecode: BytecodeCache,
}

impl WidgetSource {
    /// The widget whose entry module is `path` (a file, or a directory holding
    /// `widget.js`).
    pub fn load(path: &Path) -> std::result::Result<WidgetSource, SourceError> {
        let file = if path.is_dir() {
            path.join("widget.js")
        } else {
            path.to_owned()
        };
        let entry = normalize(&file);
        let text = std::fs::read_to_string(&file).map_err(|source| SourceError::Read {
            path: entry.clone(),
            source,
        })?;
        let mut files = BTreeMap::new();
        files.insert(entry.clone(), text);
        Ok(WidgetSource {
            entry,
            files: Arc::new(Mutex::new(files)),
            bytecode: BytecodeCache::default(),
        })
    }

    /// A widget from sources in memory (tests): `entry` names one of `files`.
    pub fn from_sources(entry: &str, files: &[(&str, &str)]) -> WidgetSource {
        let files = files
            .iter()
            .map(|(name, text)| (normalize(Path::new(name)), (*text).to_owned()))
            .collect();
        WidgetSource {
            entry: normalize(Path::new(entry)),
            files: Arc::new(Mutex::new(files)),
            bytecode: BytecodeCache::default(),
        }
    }

    /// The entry module's name (its normalized path).
    pub fn entry_name(&self) -> &str {
        &self.entry
    }

    /// The compiled modules of this widget (and of the page's prelude).
    pub(crate) fn bytecode(&self) -> &BytecodeCache {
        &self.bytecode
    }

    /// A resolver/loader pair for one runtime.
    pub(crate) fn loader(&self) -> (WidgetResolver, WidgetLoader) {
        (
            WidgetResolver {
                entry: self.entry.clone(),
            },
            WidgetLoader {
                files: self.files.clone(),
                bytecode: self.bytecode.clone(),
            },
        )
    }
}

/// A path with `.` and `..` folded, `/`-separated.
fn normalize(path: &Path) -> String {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out.to_string_lossy().replace('\\', "/")
}

#[derive(Debug)]
pub(crate) struct WidgetResolver {
    /// The entry module, which the page imports by its full name.
    entry: String,
}

impl Resolver for WidgetResolver {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        attributes: Option<ImportAttributes<'js>>,
    ) -> Result<String> {
        let text = attributes
            .and_then(|a| a.get_type().ok().flatten())
            .is_some_and(|t| t == "text");
        let resolved = if name == REACT_NAME || name == self.entry {
            name.to_owned()
        } else if name.starts_with("./") || name.starts_with("../") || name.starts_with('/') {
            let base = base.strip_suffix(TEXT_SUFFIX).unwrap_or(base);
            let dir = Path::new(base).parent().unwrap_or(Path::new(""));
            normalize(&dir.join(name))
        } else {
            return Err(Error::new_resolving_message(
                base,
                name,
                "only 'react' and relative paths resolve in the simulator",
            ));
        };
        Ok(if text {
            format!("{resolved}{TEXT_SUFFIX}")
        } else {
            resolved
        })
    }
}

#[derive(Debug)]
pub(crate) struct WidgetLoader {
    files: Arc<Mutex<BTreeMap<String, String>>>,
    bytecode: BytecodeCache,
}

impl WidgetLoader {
    fn read(&self, name: &str) -> Result<String> {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(text) = files.get(name) {
            return Ok(text.clone());
        }
        let text = std::fs::read_to_string(name)
            .map_err(|e| Error::new_loading_message(name, e.to_string()))?;
        files.insert(name.to_owned(), text.clone());
        Ok(text)
    }
}

impl Loader for WidgetLoader {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> Result<Module<'js, Declared>> {
        // The React shim is the host's (its source stays out); a widget's files keep
        // theirs.
        let keep = match name == REACT_NAME {
            true => Source::Strip,
            false => Source::Keep,
        };
        self.bytecode.declare(ctx, name, keep, || {
            if name == REACT_NAME {
                return Ok(REACT.to_owned());
            }
            if let Some(path) = name.strip_suffix(TEXT_SUFFIX) {
                let text = self.read(path)?;
                let literal = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".into());
                return Ok(format!("export default {literal};"));
            }
            self.read(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_fold() {
        assert_eq!(
            normalize(Path::new("widgets/a/./b/../c.js")),
            "widgets/a/c.js"
        );
        assert_eq!(normalize(Path::new("../x.js")), "../x.js");
    }
}
