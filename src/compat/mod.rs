//! The seed systems' own surfaces over a [`crate::Phone`], so that a
//! program written against one of them runs on webphone by changing only
//! the type it calls: thin translations of names and shapes, nothing more
//! (the behaviour is the phone's). One module per seed.

pub mod bizfly;
pub mod sipml;
