//! Property-based aggregate tests (being written).
