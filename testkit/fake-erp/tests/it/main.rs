//! Integration tests of the fake ERP, over real HTTP on loopback.
//! One test binary (modules below) to keep link time low.
#![allow(clippy::unwrap_used)]

mod admin;
mod common;
mod datasets;
mod faults;
mod logging;
mod onboarding;
mod operations;
mod releases;
mod scale;
mod sessions;
