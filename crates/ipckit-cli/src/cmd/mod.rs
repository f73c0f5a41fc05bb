//! One module per command noun.

pub mod child;
pub mod compare;
pub mod deadlock;
pub mod demo;
pub mod ls;
pub mod mq;
pub mod net;
pub mod objects;
pub mod rm;
pub mod sem;
pub mod shm;
pub mod tour;
