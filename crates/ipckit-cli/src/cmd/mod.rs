//! One module per command noun.

pub mod child;
pub mod deadlock;
pub mod demo;
pub mod ls;
pub mod objects;
pub mod rm;
pub mod shm;
pub mod tour;
