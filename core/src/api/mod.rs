//! API types
