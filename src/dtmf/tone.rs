//! The ITU-T Q.23 DTMF frequency pairs, generated as ramped tones.

use std::f64::consts::PI;

/// Row (low group) frequencies, Hz.
pub const ROWS: [f64; 4] = [697.0, 770.0, 852.0, 941.0];

/// Column (high group) frequencies, Hz.
pub const COLUMNS: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// The keypad: `KEYPAD[row][column]`.
pub const KEYPAD: [[char; 4]; 4] =
    [['1', '2', '3', 'A'], ['4', '5', '6', 'B'], ['7', '8', '9', 'C'], ['*', '0', '#', 'D']];

/// Default level of each of the two tones, as a peak in dBFS (the pair peaks near −3 dBFS).
pub const DEFAULT_LEVEL_DBFS: f64 = -9.0;

/// Rise and fall time of a tone.
pub const RAMP_MS: u32 = 5;

/// The (low, high) frequencies of a symbol (case-insensitive).
#[must_use]
pub fn frequencies(digit: char) -> Option<(f64, f64)> {
    let d = digit.to_ascii_uppercase();
    KEYPAD.iter().enumerate().find_map(|(r, row)| row.iter().position(|c| *c == d).map(|c| (ROWS[r], COLUMNS[c])))
}

/// One digit's tone pair with raised-cosine ramps at both ends.
#[derive(Clone, Debug)]
pub struct DtmfTone {
    w_low: f64,
    w_high: f64,
    amplitude: f64,
    n: usize,
    total: usize,
    ramp: usize,
}

impl DtmfTone {
    /// The tone of `digit` for `duration_ms` at `rate` Hz, each of the two
    /// tones peaking at `level_dbfs`; `None` if `digit` is not a DTMF symbol.
    #[must_use]
    pub fn new(digit: char, duration_ms: u32, level_dbfs: f64, rate: u32) -> Option<DtmfTone> {
        let (low, high) = frequencies(digit)?;
        let rate = f64::from(rate.max(1));
        let total = (f64::from(duration_ms) * rate / 1000.0).round() as usize;
        let ramp = ((f64::from(RAMP_MS) * rate / 1000.0) as usize).min(total / 2);
        Some(DtmfTone {
            w_low: 2.0 * PI * low / rate,
            w_high: 2.0 * PI * high / rate,
            amplitude: 32767.0 * 10f64.powf(level_dbfs.min(-6.02) / 20.0),
            n: 0,
            total,
            ramp,
        })
    }

    /// Whether every sample was produced.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.n >= self.total
    }

    /// Writes the next samples into `out` (zeros past the end); true while
    /// some of them belong to the tone.
    pub fn fill(&mut self, out: &mut [i16]) -> bool {
        let playing = !self.is_done();
        for s in out.iter_mut() {
            *s = self.next_sample();
        }
        playing
    }

    /// Adds the next samples to `out` (saturating); true while playing.
    pub fn mix(&mut self, out: &mut [i16]) -> bool {
        let playing = !self.is_done();
        for s in out.iter_mut() {
            *s = s.saturating_add(self.next_sample());
        }
        playing
    }

    fn next_sample(&mut self) -> i16 {
        if self.n >= self.total {
            return 0;
        }
        let n = self.n;
        self.n += 1;
        let edge = n.min(self.total - 1 - n);
        let gain = if edge < self.ramp { 0.5 - 0.5 * (PI * edge as f64 / self.ramp as f64).cos() } else { 1.0 };
        let t = n as f64;
        (self.amplitude * gain * ((self.w_low * t).sin() + (self.w_high * t).sin())) as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::SYMBOLS;

    #[test]
    fn pairs_and_ramps() {
        assert_eq!(frequencies('5'), Some((770.0, 1336.0)));
        assert_eq!(frequencies('d'), Some((941.0, 1633.0)));
        assert_eq!(frequencies('x'), None);
        for s in SYMBOLS {
            assert!(frequencies(s).is_some());
        }
        let mut t = DtmfTone::new('1', 100, -9.0, 8000).unwrap();
        let mut out = vec![0i16; 900];
        assert!(t.fill(&mut out));
        assert!(t.is_done() && !t.fill(&mut [0; 4]));
        // Starts and ends at zero, no step larger than the steepest sine slope.
        assert_eq!(out[0], 0);
        assert!(out[799].abs() < 200 && out[800..].iter().all(|s| *s == 0));
        let peak = out.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!(peak <= 23_300 && peak > 18_000, "{peak}");
        let max_step = out.windows(2).map(|w| (i32::from(w[1]) - i32::from(w[0])).abs()).max().unwrap();
        assert!(max_step < 2 * 11_600, "{max_step}");
    }
}
