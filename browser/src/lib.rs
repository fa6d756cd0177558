//! What a page sees, in virtual time.
//!
//! - [`sse_parser`]: the WHATWG event-stream parser, sans-IO;
//! - [`eventsource`]: the browser's `EventSource` as a sans-IO state machine;
//! - [`netstack`]: the CORS check, the headers a cross-origin page may read, keep-alive reuse;
//! - [`page`]: the JavaScript host: one QuickJS realm per simulated page with
//!   `EventSource`, `fetch`, timers, `console`, `Date`/`performance`/`Math.random` on the
//!   virtual clock and the session's seed, and a React hooks shim;
//! - [`modules`]: a widget's module files, read once and kept, compiled once
//!   (`bytecode`: each realm reads QuickJS bytecode instead of parsing again).
//!
//! Nothing here does I/O at run time (module files are read on first import) or reads
//! a clock: the simulator says what time it is and what the network did.

mod bytecode;
pub mod eventsource;
pub mod modules;
pub mod netstack;
pub mod page;
pub mod sse_parser;

pub use modules::{SourceError, WidgetSource};
pub use page::{DEFAULT_BUDGET, Engine, Host, MemoryLimit, Page, PageError, PageOptions, Request};
