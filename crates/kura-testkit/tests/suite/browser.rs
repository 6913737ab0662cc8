//! Browser tests come next.
