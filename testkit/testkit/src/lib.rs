//! Test support for SpacePOS: in-memory fakes of the ports and one contract
//! suite per port.
//!
//! [`fakes`] holds stateful, `Clone` fakes (an `Arc<Mutex<..>>` inside, so a
//! test keeps a handle to inspect what the code under test did) with a few
//! fault switches. [`suites`] holds one contract suite per port: plain
//! `pub async fn case_*` functions, each checking one clause of the port's
//! documented contract, and an exported macro that stamps a `#[tokio::test]`
//! per case from a store factory. The fakes and the real adapters run the same
//! suites, so a fake that passes is a fake other crates' tests may trust.
//!
//! The fake ERP server lives in its own crate, `spacepos-fake-erp`.

pub mod fakes;
pub mod rabbitmq;
pub mod suites;
