//! Conversion quality of our [`Resampler`](webphone::media::dsp::resample::Resampler), side by
//! side with rubato's FFT resampler (`support/resample_pair.rs`), on the conversions the
//! pipeline makes, both fed frame by frame (20 ms) as the pipeline feeds them.
//!
//! Every signal is defined analytically, so the ideal output is the same function sampled at
//! the output rate's instants, shifted by the converter's group delay (measured here, on the
//! sweep: coarse cross-correlation, then the sub-sample delay that minimizes the error). Measured:
//! - SNR of an exponential sine sweep from 50 Hz to 85 % of the lower Nyquist frequency (our
//!   passband edge: 3.4 kHz for 8 kHz), and of pure tones at 300 Hz, 1 kHz, 3.4 kHz and at
//!   90 % of the lower Nyquist frequency (in our transition band: reported, not asserted);
//! - passband ripple: the spread of the gain of 16 tones up to 85 % of the lower Nyquist;
//! - spurious rejection: for downsampling, how far below the input a tone that would alias
//!   comes out; for upsampling, the SNR against the ideal of a tone at 75 % of the input
//!   Nyquist frequency (images and noise).
//!
//! Run `cargo test --release --test resample_quality -- --nocapture` for the table; the
//! thresholds apply to ours only (rubato's numbers are reported for the comparison).

#[path = "support/resample_pair.rs"]
mod resample_pair;

use std::f64::consts::PI;

use resample_pair::{CONVERSIONS, FrameResampler, Ours, Rubato, frame_len};

/// Peak amplitude of every test signal (half of full scale).
const AMP: f64 = 16_000.0;
/// Raised-cosine fade at both ends of every signal, in seconds.
const FADE: f64 = 0.02;
/// Silence fed after a signal so that the converters' delay lines empty.
const TAIL: f64 = 0.1;

/// A test signal, zero outside `0..duration` seconds.
#[derive(Clone, Copy)]
enum Signal {
    /// Exponential sweep from `f0` to `f1` Hz.
    Sweep { f0: f64, f1: f64, duration: f64 },
    /// A pure tone.
    Tone { freq: f64, duration: f64 },
}

impl Signal {
    fn duration(self) -> f64 {
        match self {
            Signal::Sweep { duration, .. } | Signal::Tone { duration, .. } => duration,
        }
    }

    /// The signal's value at `t` seconds.
    fn at(self, t: f64) -> f64 {
        let d = self.duration();
        if !(0.0..=d).contains(&t) {
            return 0.0;
        }
        let edge = t.min(d - t);
        let envelope = if edge < FADE { 0.5 - 0.5 * (PI * edge / FADE).cos() } else { 1.0 };
        let phase = match self {
            Signal::Sweep { f0, f1, duration } => {
                let k = (f1 / f0).ln() / duration;
                2.0 * PI * f0 * ((k * t).exp() - 1.0) / k
            }
            Signal::Tone { freq, .. } => 2.0 * PI * freq * t,
        };
        AMP * envelope * phase.sin()
    }
}

/// Feeds `signal` (then silence) through `r` in 20 ms frames; returns the output.
fn run(r: &mut dyn FrameResampler, from: u32, to: u32, signal: Signal) -> Vec<i16> {
    let (fin, fout) = (frame_len(from), frame_len(to));
    let frames = ((signal.duration() + TAIL) * f64::from(from) / fin as f64).ceil() as usize;
    let mut input = vec![0i16; fin];
    let mut frame_out = vec![0i16; fout + 1];
    let mut out = Vec::with_capacity(frames * fout);
    for f in 0..frames {
        for (i, s) in input.iter_mut().enumerate() {
            let n = f * fin + i;
            *s = signal.at(n as f64 / f64::from(from)).round() as i16;
        }
        let n = r.process_frame(&input, &mut frame_out);
        assert_eq!(n, fout, "{} {from} -> {to}: frame {f} gave {n} samples", r.name());
        out.extend_from_slice(&frame_out[..n]);
    }
    out
}

/// Error energy and reference energy of `out` against `signal` delayed by `delay` output
/// samples, over the output instants whose signal time lies in `from..until` seconds.
fn energies(out: &[i16], to: u32, signal: Signal, delay: f64, from: f64, until: f64) -> (f64, f64) {
    let (mut err, mut sig) = (0.0, 0.0);
    for (m, &y) in out.iter().enumerate() {
        let t = (m as f64 - delay) / f64::from(to);
        if t < from || t > until {
            continue;
        }
        let reference = signal.at(t);
        sig += reference * reference;
        err += (f64::from(y) - reference).powi(2);
    }
    (err, sig)
}

fn snr_db(out: &[i16], to: u32, signal: Signal, delay: f64, from: f64, until: f64) -> f64 {
    let (err, sig) = energies(out, to, signal, delay, from, until);
    10.0 * (sig / err.max(1e-9)).log10()
}

/// The delay, in output samples, that best aligns `out` with the sweep `signal`: the integer
/// lag of the largest cross-correlation over a stretch in the middle of the sweep, refined to a
/// fraction of a sample by a golden-section search of the error energy.
fn measure_delay(out: &[i16], to: u32, signal: Signal) -> f64 {
    let rate = f64::from(to);
    let start = (0.4 * signal.duration() * rate) as usize;
    let stretch = (0.05 * rate) as usize;
    let max_lag = (0.06 * rate) as usize;
    let reference: Vec<f64> = (start..start + stretch).map(|m| signal.at(m as f64 / rate)).collect();
    let lag = (0..max_lag)
        .max_by(|&a, &b| {
            let corr =
                |lag: usize| -> f64 { reference.iter().zip(&out[start + lag..]).map(|(r, &y)| r * f64::from(y)).sum() };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap_or(0);
    let error = |d: f64| energies(out, to, signal, d, 0.0, signal.duration()).0;
    let (mut lo, mut hi) = (lag as f64 - 1.0, lag as f64 + 1.0);
    let g = (5f64.sqrt() - 1.0) / 2.0;
    for _ in 0..40 {
        let (a, b) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if error(a) < error(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    (lo + hi) / 2.0
}

/// Amplitude of the component at `freq` Hz in `x` (least-squares fit of a sinusoid).
fn amplitude(x: &[i16], freq: f64, rate: u32) -> f64 {
    let w = 2.0 * PI * freq / f64::from(rate);
    let (mut ss, mut sc, mut cc, mut ys, mut yc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &y) in x.iter().enumerate() {
        let (s, c) = (w * i as f64).sin_cos();
        let y = f64::from(y);
        (ss, sc, cc, ys, yc) = (ss + s * s, sc + s * c, cc + c * c, ys + y * s, yc + y * c);
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((ys * cc - yc * sc) / det, (yc * ss - ys * sc) / det);
    (a * a + b * b).sqrt()
}

fn mean_square(x: &[i16]) -> f64 {
    x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64
}

/// The steady part of a tone's output (its fades and the converter's start left out).
fn steady(out: &[i16], to: u32, duration: f64) -> &[i16] {
    let rate = f64::from(to);
    &out[(0.1 * rate) as usize..((duration - 0.05) * rate) as usize]
}

/// Everything measured for one converter on one conversion.
struct Quality {
    delay: f64,
    nominal_delay: f64,
    sweep_snr: f64,
    /// (frequency, SNR) of the pure tones.
    tones: Vec<(f64, f64)>,
    ripple_db: f64,
    rejection_db: f64,
}

fn measure(make: &dyn Fn() -> Box<dyn FrameResampler>, from: u32, to: u32) -> Quality {
    let nyquist = f64::from(from.min(to)) / 2.0;
    let sweep = Signal::Sweep { f0: 50.0, f1: 0.85 * nyquist, duration: 2.0 };
    let mut r = make();
    let nominal_delay = r.nominal_delay();
    let out = run(r.as_mut(), from, to, sweep);
    let delay = measure_delay(&out, to, sweep);
    let sweep_snr = snr_db(&out, to, sweep, delay, 0.0, sweep.duration());

    let tones = [300.0, 1000.0, 3400.0, 0.9 * nyquist]
        .into_iter()
        .map(|freq| {
            let tone = Signal::Tone { freq, duration: 0.5 };
            let out = run(make().as_mut(), from, to, tone);
            (freq, snr_db(&out, to, tone, delay, 0.1, tone.duration() - 0.05))
        })
        .collect();

    let gains: Vec<f64> = (0..16)
        .map(|i| {
            let freq = 100.0 + (0.85 * nyquist - 100.0) * f64::from(i) / 15.0;
            let tone = Signal::Tone { freq, duration: 0.3 };
            let out = run(make().as_mut(), from, to, tone);
            20.0 * (amplitude(steady(&out, to, tone.duration()), freq, to) / AMP).log10()
        })
        .collect();
    let ripple_db = gains.iter().copied().fold(f64::MIN, f64::max) - gains.iter().copied().fold(f64::MAX, f64::min);

    let rejection_db = if to < from {
        // A tone between the output and the input Nyquist frequencies, whose alias would land
        // in the passband: all that comes out is aliasing.
        let out_nyquist = f64::from(to) / 2.0;
        let freq = (f64::from(to) - out_nyquist / 2.0).min(out_nyquist + (f64::from(from) / 2.0 - out_nyquist) / 2.0);
        let tone = Signal::Tone { freq, duration: 0.3 };
        let out = run(make().as_mut(), from, to, tone);
        10.0 * ((AMP * AMP / 2.0) / mean_square(steady(&out, to, tone.duration())).max(1e-9)).log10()
    } else {
        // A tone at 75 % of the input Nyquist frequency against its ideal output: the error is
        // images and noise.
        let tone = Signal::Tone { freq: 0.75 * f64::from(from) / 2.0, duration: 0.3 };
        let out = run(make().as_mut(), from, to, tone);
        snr_db(&out, to, tone, delay, 0.1, tone.duration() - 0.05)
    };
    Quality { delay, nominal_delay, sweep_snr, tones, ripple_db, rejection_db }
}

fn conversion_name(from: u32, to: u32) -> String {
    let k = |hz: u32| format!("{}k", f64::from(hz) / 1000.0);
    format!("{} -> {}", k(from), k(to))
}

fn print(conversion: &str, name: &str, to: u32, q: &Quality) {
    let tones: Vec<String> = q.tones.iter().map(|(f, snr)| format!("{f:.0} Hz {snr:5.1}")).collect();
    println!(
        "{conversion:<12} {name:<7} delay {:6.2} ms ({:7.2} measured, {:7.2} nominal samples)  sweep SNR {:5.1} dB  \
         tones SNR dB [{}]  ripple {:.3} dB  spurious rejection {:5.1} dB",
        q.delay * 1000.0 / f64::from(to),
        q.delay,
        q.nominal_delay,
        q.sweep_snr,
        tones.join(", "),
        q.ripple_db,
        q.rejection_db,
    );
}

/// Our converter's quality on every pipeline conversion, printed next to rubato's.
///
/// The thresholds hold ours to what its design (Kaiser window, 60 dB stopband, passband to 85 %
/// of the lower Nyquist frequency) gives, with a margin: the sweep and the in-band tones within
/// the 16-bit output's reach, the passband flat, aliases and images well down.
#[test]
fn ours_meets_its_design_and_is_compared_with_rubato() {
    let mut failures = Vec::new();
    for (from, to) in CONVERSIONS {
        let conversion = conversion_name(from, to);
        let ours = measure(&|| Box::new(Ours::new(from, to)), from, to);
        let rubato = measure(&|| Box::new(Rubato::new(from, to)), from, to);
        print(&conversion, "ours", to, &ours);
        print(&conversion, "rubato", to, &rubato);

        let nyquist = f64::from(from.min(to)) / 2.0;
        if ours.sweep_snr < 65.0 {
            failures.push(format!("{conversion}: sweep SNR {:.1} dB", ours.sweep_snr));
        }
        for &(freq, snr) in &ours.tones {
            if freq <= 0.85 * nyquist && snr < 50.0 {
                failures.push(format!("{conversion}: {freq} Hz SNR {snr:.1} dB"));
            }
        }
        if ours.ripple_db > 0.05 {
            failures.push(format!("{conversion}: passband ripple {:.3} dB", ours.ripple_db));
        }
        if ours.rejection_db < 55.0 {
            failures.push(format!("{conversion}: spurious rejection {:.1} dB", ours.rejection_db));
        }
        // Linear phase: the measured delay is the one the filter length gives.
        if (ours.delay - ours.nominal_delay).abs() > 0.05 {
            failures
                .push(format!("{conversion}: delay {:.3} samples, filter says {:.3}", ours.delay, ours.nominal_delay));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
