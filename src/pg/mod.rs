//! PostgreSQL knowledge: WAL file names and segment arithmetic.

pub mod wal;
