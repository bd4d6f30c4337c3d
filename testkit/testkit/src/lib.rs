//! Fakes and contract suites (being written).
