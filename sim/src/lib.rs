//! The Picasso widget model and the deterministic simulator.
//!
//! Layout:
//! - [`sse_parser`]: the WHATWG event-stream parser, sans-IO;
//! - [`eventsource`]: the browser's `EventSource` as a sans-IO state machine;
//! - [`widget`]: the widget as a pure state machine, three policies;

pub mod eventsource;
pub mod sse_parser;
pub mod widget;

pub use widget::Policy;
