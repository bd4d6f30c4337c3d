//! The fake ERP (being written).
