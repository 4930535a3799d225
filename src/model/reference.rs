//! CPU reference twin (f64).
