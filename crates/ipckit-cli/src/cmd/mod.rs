//! One module per command noun.

pub mod child;
pub mod compare;
pub mod demo;
pub mod net;
pub mod tour;
