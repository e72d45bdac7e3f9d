//! No library: the end-to-end tests are in `tests/`.
