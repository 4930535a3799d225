//! GPU network.
