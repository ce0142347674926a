//! Between the network and the decoder: the adaptive jitter buffer
//! ([`jitter`]), the playout clock phase-locked to arrivals ([`playout`]),
//! quality alerts ([`quality`]) and a seeded loss and jitter stage for call
//! tests ([`impairment`]).

pub mod impairment;
pub mod jitter;
pub mod playout;
pub mod quality;
