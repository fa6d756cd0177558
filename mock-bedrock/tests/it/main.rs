//! Mock Bedrock driven over loopback by the official SDKs: Rust here, boto3 and the
//! JavaScript v3 SDK through the scripts in `tests/sdk/`. One test binary (it links
//! once and shares the helpers).

mod mocks;
mod other_sdks;
mod record;
mod rust_sdk;
mod support;
mod wire;
mod wiremock_sdk;
