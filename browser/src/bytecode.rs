//! Modules compiled once, loaded into every realm as QuickJS bytecode.
//!
//! Every simulated session is a fresh realm, and a realm's modules are its own, so each
//! session used to parse the prelude, the React shim and every widget file again: a
//! quarter of the JavaScript widget's time in the simulator went to QuickJS's parser.
//! Reading the bytecode QuickJS wrote for the first realm is several times cheaper than
//! parsing, and gives the same module: same code, same names, same line and column
//! numbers in stacks (debug information is kept).
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
use rquickjs::{Ctx, Module, Result};
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

impl BytecodeCache {
    /// The module `name` declared in `ctx`: from its cached bytecode, or compiled from
    /// `source()` (then cached). A module that does not compile is not cached, so each
    /// realm reports the same syntax error.
    pub(crate) fn declare<'js>(
        &self,
        ctx: &Ctx<'js>,
        name: &str,
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
        let keep = !may_carry_import_attributes(&source);
        let module = Module::declare(ctx.clone(), name, source)?;
        let bytes = match keep {
            true => Some(module.write(WriteOptions::default())?.into()),
            false => None,
        };
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name.to_owned())
            .or_insert(bytes);
        Ok(module)
    }
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
    use rquickjs::{Context, Runtime};

    fn eval_module(cache: &BytecodeCache, source: &str) -> (i32, String) {
        let rt = Runtime::new().unwrap();
        let ctx = Context::full(&rt).unwrap();
        ctx.with(|ctx| {
            let m = cache
                .declare(&ctx, "m.js", || Ok(source.to_owned()))
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
                    .declare(&ctx, "bad.js", || Ok("export const = ;".into()))
                    .is_err()
            );
        });
        assert!(cache.modules.lock().unwrap().is_empty());
    }
}
