//! Modules compiled once, loaded into every realm as QuickJS bytecode.
//!
//! Every simulated session is a fresh realm, and a realm's modules are its own, so each
//! session used to parse the prelude, the React shim and every widget file again: a
//! quarter of the JavaScript widget's time in the simulator went to QuickJS's parser.
//! Reading bytecode, compiled once on a scratch runtime, is several times cheaper than
//! parsing, and gives the same module: same code, same names, same line and column
//! numbers in stacks (debug information is kept). The host's own modules leave their
//! source text out ([`Source::Strip`]).
//!
//! One exception: QuickJS's bytecode does not keep import attributes (`import t from
//! './f.js' with { type: 'text' }` would come back as a plain import of `./f.js`), so a
//! module whose text may carry them (`with {` or `assert {` anywhere, even in a comment)
//! is parsed in every realm, as before.
//!
//! Loading bytecode is the workspace's only `unsafe`: QuickJS trusts bytecode, so
//! `Module::load` asks its caller to vouch that the bytes are valid. They are, by
//! construction: the only bytes ever loaded are those `Module::write` produced in this
//! process, from a module this same QuickJS build had just compiled, kept unchanged in
//! an immutable `Arc<[u8]>`.

use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Context, Ctx, Module, Result, Runtime};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Compiled modules by name, shared by every runtime that loads the same widget;
/// `None` for a module that is parsed every time (it may carry import attributes).
#[derive(Debug, Clone, Default)]
pub(crate) struct BytecodeCache {
    modules: Arc<Mutex<HashMap<String, Option<Bytecode>>>>,
}

/// One module's bytecode, as `Module::write` gave it.
type Bytecode = Arc<[u8]>;

/// Whether a module keeps its source text in every realm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Kept: `fn.toString()` shows the widget's code, as in a browser.
    Keep,
    /// Dropped: the host's own modules (the prelude, the React shim), whose functions
    /// stand in for a browser's built-ins, and a built-in's `toString()` shows no code
    /// either. The text was two thirds of their bytecode, copied into every realm.
    Strip,
}

impl BytecodeCache {
    /// The module `name` declared in `ctx`: from its cached bytecode, or compiled from
    /// `source()` (then cached). The bytecode is written by a scratch runtime, so every
    /// realm, the first included, loads the same module. A module that does not compile
    /// is not cached, and is declared in `ctx` from its text, so each realm reports the
    /// same syntax error.
    pub(crate) fn declare<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
        keep: Source,
        source: impl FnOnce() -> Result<String>,
    ) -> Result<Module<'js, Declared>> {
        let cached = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned();
        match cached {
            Some(Some(bytes)) => return load(ctx, &bytes),
            Some(None) => return Module::declare(ctx.clone(), name, source()?),
            None => {}
        }
        let source = source()?;
        let bytes = match may_carry_import_attributes(&source) {
            true => None,
            false => match compile(name, &source, keep) {
                Some(bytes) => Some(bytes),
                None => return Module::declare(ctx.clone(), name, source),
            },
        };
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert(bytes.clone());
        match bytes {
            Some(bytes) => load(ctx, &bytes),
            None => Module::declare(ctx.clone(), name, source),
        }
    }
}

/// Compiles `source` on a runtime of its own and writes its bytecode; `None` if it does
/// not compile (the caller then lets the realm report the error).
fn compile(name: &str, source: &str, keep: Source) -> Option<Bytecode> {
    let rt = Runtime::new().ok()?;
    let ctx = Context::full(&rt).ok()?;
    ctx.with(|ctx| {
        let module = Module::declare(ctx.clone(), name, source).ok()?;
        let options = WriteOptions {
            strip_source: keep == Source::Strip,
            ..WriteOptions::default()
        };
        module.write(options).ok().map(Bytecode::from)
    })
}

/// Whether `source` may hold an import with attributes (`with {…}`, or the older
/// `assert {…}`): a text test, so it errs towards parsing (a comment or a string counts).
fn may_carry_import_attributes(source: &str) -> bool {
    ["with", "assert"].iter().any(|keyword| {
        source
            .match_indices(keyword)
            .any(|(at, _)| source[at + keyword.len()..].trim_start().starts_with('{'))
    })
}

/// Reads a module back from bytes [`BytecodeCache::declare`] wrote.
#[allow(unsafe_code)]
fn load<'js>(ctx: &Ctx<'js>, bytes: &[u8]) -> Result<Module<'js, Declared>> {
    // SAFETY: `bytes` is only ever the output of `Module::write` on a module this
    // process compiled with this same QuickJS build (see `BytecodeCache::declare`), held
    // unchanged since: valid bytecode, which is what `Module::load` requires. QuickJS-ng
    // copies the bytes (`JS_READ_OBJ_ROM_DATA` is 0), so they need not outlive the module.
    unsafe { Module::load(ctx.clone(), bytes) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_module(cache: &BytecodeCache, source: &str) -> (i32, String) {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let m = cache
                .declare(&ctx, "m.js", Source::Keep, || Ok(source.to_owned()))
                .unwrap();
            let (m, promise) = m.eval().unwrap();
            promise.finish::<()>().unwrap();
            let n: i32 = m.get("n").unwrap();
            let stack: String = m
                .get::<_, rquickjs::Function>("fail")
                .unwrap()
                .call::<_, String>(())
                .unwrap();
            (n, stack)
        })
    }

    #[test]
    fn a_loaded_module_is_the_compiled_one_with_its_line_numbers() {
        let cache = BytecodeCache::default();
        let source = "export const n = 6 * 7;\n\nexport function fail() {\n  return new Error('x').stack;\n}\n";
        let first = eval_module(&cache, source);
        assert_eq!(cache.modules.lock().unwrap().len(), 1);
        // The second realm (on another runtime) reads the bytecode: same value, same stack.
        let second = eval_module(&cache, "this source is never parsed");
        assert_eq!(first, second);
        assert_eq!(first.0, 42);
        assert!(first.1.contains("m.js:4"), "{}", first.1);
    }

    #[test]
    fn a_module_with_import_attributes_is_parsed_every_time() {
        assert!(may_carry_import_attributes(
            "import t from './f.js' with { type: 'text' };"
        ));
        assert!(may_carry_import_attributes(
            "import j from './j.json' assert{type:'json'}"
        ));
        assert!(!may_carry_import_attributes(
            "import { a } from './a.js';\nconst withdrawn = { x: 1 };"
        ));
        let cache = BytecodeCache::default();
        let source = "// with { type: 'text' }\nexport const n = 1;\nexport function fail() { return ''; }\n";
        assert_eq!(eval_module(&cache, source).0, 1);
        assert_eq!(cache.modules.lock().unwrap().get("m.js"), Some(&None));
        assert_eq!(
            eval_module(
                &cache,
                "export const n = 2;\nexport function fail() { return ''; }"
            )
            .0,
            2
        );
    }

    #[test]
    fn a_module_that_does_not_compile_is_not_cached() {
        let cache = BytecodeCache::default();
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            assert!(
                cache
                    .declare(&ctx, "bad.js", Source::Keep, || Ok(
                        "export const = ;".into()
                    ))
                    .is_err()
            );
        });
        assert!(cache.modules.lock().unwrap().is_empty());
    }
}
