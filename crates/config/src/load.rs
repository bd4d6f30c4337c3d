//! Layered loading and validation (being written).
