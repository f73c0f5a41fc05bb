//! One module per command noun.

pub mod child;
pub mod deadlock;
pub mod demo;
pub mod tour;
