//! One module per command noun.

pub mod child;
pub mod demo;
pub mod mq;
pub mod tour;
