//! The fake provider.
