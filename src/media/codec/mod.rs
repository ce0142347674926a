//! Audio codecs behind one interface ([`Encoder`], [`Decoder`], chosen by
//! [`CodecKind`]): Opus ([`opus`], via libopus) and G.711 ([`g711`], pure
//! Rust, resampling to and from 8 kHz).

pub mod common;
pub mod g711;
pub mod opus;

pub use common::{CodecError, CodecKind, Decoder, Encoder, decoder, encoder};
