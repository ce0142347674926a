//! Signal processing at the edges of the audio path: sample-rate
//! conversion ([`resample`]) and measurement of level and frequency
//! ([`meter`]).

pub mod meter;
pub mod resample;
