//! The wiring that lets real servers talk to each other in-process, in virtual time.
//!
//! Under a paused tokio clock a real socket makes the runtime look idle, so timeouts
//! would fire at once (`widget-and-determinism.md` §A.1). Instead every hop is a call of
//! the next server's `Router` through `tower::ServiceExt::oneshot`:
//! - the Bedrock client's `in_process::RouterHttpClient`: the SDK's `HttpClient`, handing each
//!   request to mock Bedrock's router;
//! - the gateway's config source asks the Master's router in-process
//!   (`gateway::RouterConfigSource`, beside the socket one);
//! - [`VirtualTime`]: the SDK's clock (SigV4's `x-amz-date`), a fixed epoch plus tokio's
//!   virtual elapsed time.

use aws_smithy_async::time::TimeSource;
use std::time::{Duration, SystemTime};

/// The virtual epoch: the design document's date, 2025-07-25T00:00:00Z.
pub const EPOCH_UNIX_S: u64 = 1_753_401_600;

/// The SDK's clock: a fixed epoch plus the virtual time elapsed since the world began.
#[derive(Debug, Clone, Copy)]
pub struct VirtualTime {
    start: tokio::time::Instant,
}

impl VirtualTime {
    /// A clock whose epoch is now (virtual).
    pub fn new() -> VirtualTime {
        VirtualTime {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for VirtualTime {
    fn default() -> Self {
        VirtualTime::new()
    }
}

impl TimeSource for VirtualTime {
    fn now(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_UNIX_S) + self.start.elapsed()
    }
}
