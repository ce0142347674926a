//! The in-band DTMF detector hears no digit in speech: paragraphs spoken by
//! espeak-ng (generated at test time into a temporary directory, by a low
//! male and a fast high female voice: text without digits, text full of
//! spoken digits and phone menus, and drawn-out vowels and hums, the
//! classic talk-off risk) are fed to the detector at 48 kHz, straight
//! and through Opus, at full level and 12 dB down. Each run ends with a
//! real DTMF tone that must be the one digit heard, so the detector is
//! proven awake on the same path.
//!
//! espeak-ng is installed by `scripts/install-deps.sh`; without it this test
//! fails (it never skips).

use std::path::{Path, PathBuf};
use std::process::Command;

use webphone::dtmf::goertzel::Detector;
use webphone::dtmf::tone::DtmfTone;
use webphone::media::FrameDuration;
use webphone::media::codec::{CodecKind, decoder, encoder};
use webphone::media::io::source::WavSource;

const FRAME: usize = 960;

const PLAIN: &str = "The weather this morning is cool and clear, with a light wind from the west. \
    Later in the day, clouds will gather over the hills, and there may be a little rain by the evening. \
    Please remember to bring a coat if you are going out tonight. The library stays open late, and the \
    reading hour for children starts right after lunch. Our team is looking into the problem you reported, \
    and we will get back to you as soon as we can. Thank you for your patience, and have a lovely afternoon.";

const DIGITS: &str = "Thank you for calling. Please enter your account number, followed by the pound key. \
    Your account number is four seven one nine, two eight three six, zero zero five. \
    For sales, press one. For support, press two. For billing, press three. To speak to an operator, \
    press zero, or press star to go back. Your balance is one hundred and twenty three dollars and forty five \
    cents, due on the twenty first of March, two thousand and twenty six. Call us back at five five five, \
    zero one nine eight, extension six six seven.";

const VOWELS: &str = "Hello? Hellooooo. Ooooh. Aaaaah. Eeeeee. Mmmmmm hmmm. Noooo, nooo. Wooow. \
    Yes, yes, yessss. Ohhh, I seeeee. Riiiiing, riiiing. Beeeep. Ahhhhh ha ha ha ha. Hmmmmm, okaaaay.";

/// (voice, words per minute, pitch 0-99): a low male voice, a fast high female one.
const VOICES: [(&str, &str, &str); 2] = [("en-us", "150", "35"), ("en-us+f3", "190", "80")];

fn espeak(dir: &Path, name: &str, voice: (&str, &str, &str), text: &str) -> PathBuf {
    let path = dir.join(format!("{name}.wav"));
    let out = Command::new("espeak-ng")
        .args(["-v", voice.0, "-s", voice.1, "-p", voice.2, "-w"])
        .arg(&path)
        .arg(text)
        .output()
        .unwrap_or_else(|e| panic!("espeak-ng could not run ({e}): install it with scripts/install-deps.sh"));
    assert!(out.status.success(), "espeak-ng failed: {}", String::from_utf8_lossy(&out.stderr));
    path
}

/// `speech` at `gain`, 200 ms of silence and a `#` tone, as 48 kHz frames.
fn frames(speech: &[i16], gain: f64) -> Vec<Vec<i16>> {
    let mut out: Vec<Vec<i16>> =
        speech.chunks(FRAME).map(|f| f.iter().map(|s| (f64::from(*s) * gain) as i16).collect()).collect();
    if let Some(last) = out.last_mut() {
        last.resize(FRAME, 0);
    }
    out.extend(std::iter::repeat_n(vec![0i16; FRAME], 10));
    let mut tone = DtmfTone::new('#', 100, -20.0, 48_000).expect("a symbol");
    let mut frame = vec![0i16; FRAME];
    for _ in 0..15 {
        tone.fill(&mut frame);
        out.push(frame.clone());
    }
    out
}

/// What the detector hears in `frames`, straight or through Opus.
fn heard(frames: &[Vec<i16>], opus: bool) -> Vec<char> {
    let mut d = Detector::new(48_000);
    let mut codec = opus.then(|| {
        let frame = FrameDuration::Ms20;
        (encoder(CodecKind::Opus, frame).expect("encoder"), decoder(CodecKind::Opus, frame).expect("decoder"))
    });
    let (mut payload, mut pcm, mut got) = (vec![0u8; 1500], vec![0i16; FRAME], vec![]);
    for f in frames {
        match codec.as_mut() {
            Some((enc, dec)) => {
                let n = enc.encode(f, &mut payload).expect("encodes");
                let m = dec.decode(&payload[..n], &mut pcm).expect("decodes");
                d.handle_samples(&pcm[..m]);
            }
            None => d.handle_samples(f),
        }
        got.extend(std::iter::from_fn(|| d.poll_digit()).map(|x| x.digit));
    }
    got
}

#[test]
fn no_false_digits_in_spoken_paragraphs() {
    let dir = std::env::temp_dir().join(format!("webphone-dtmf-speech-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = format!("{PLAIN} {DIGITS} {VOWELS}");
    let mut seconds = 0.0;
    for (v, voice) in VOICES.iter().enumerate() {
        let wav = espeak(&dir, &format!("voice-{v}"), *voice, &text);
        // Decoded and resampled to 48 kHz by the crate, as a call's WAV source would be.
        let source = WavSource::open(&wav).expect("espeak-ng writes a WAV the crate reads");
        let speech = source.duration().as_secs_f64();
        assert!(speech > 40.0, "{voice:?}: only {speech} s of speech");
        seconds += speech;
        for gain in [1.0, 0.25] {
            let frames = frames(source.samples(), gain);
            for opus in [false, true] {
                let got = heard(&frames, opus);
                assert_eq!(got, ['#'], "{voice:?}, gain {gain}, through Opus {opus}: digits heard {got:?}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{seconds:.0} s of speech, 4 ways each: no false digit");
}
