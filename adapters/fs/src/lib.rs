//! File-system adapter (being written).
