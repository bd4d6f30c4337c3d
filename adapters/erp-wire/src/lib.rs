//! The ERP's wire format, version 1 of `docs/contract/ERP-CONTRACT.md`.
//!
//! Serde types for every REST body (camelCase, module [`rest`]) and every
//! integration event (PascalCase, module [`events`]). This crate implements no
//! port: it is the one place where the contract's spelling lives, shared by
//! `spacepos-erp-http`, `spacepos-amqp` and the fake ERP in testkit, which map
//! these types to domain types at their boundary.
//!
//! **Invariant:** every file of `docs/contract/examples/` deserializes into its
//! type here and serializes back to the same JSON value (`tests/examples.rs`).
//! Unknown properties are ignored on input, as the contract requires; optional
//! properties serialize as `null`, as the ERP's System.Text.Json does.

pub mod events;
pub mod rest;
