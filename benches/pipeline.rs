//! What the call's audio pipelines and SDP handling cost on top of the codec or parser they wrap: each bench
//! is measured next to an anchor in the same run, so the ratio `ours / anchor` says how much of the time is
//! ours. One iteration is one 20 ms frame (960 samples of 48 kHz mono) or one SDP body.
//!
//! The audio is one second of a synthetic voiced signal (150 Hz harmonics, syllable-rate envelope, noise),
//! as 50 precomputed frames replayed in a loop by both sides of every pair.
//!
//! | Bench                          | Measures                                                  | Anchor                          |
//! |--------------------------------|-----------------------------------------------------------|---------------------------------|
//! | `send_path/pipeline`           | [`SendPipeline::next_packet`] with Opus: source read (a replaying [`AudioSource`]), mute check, encode, RTP fields | `send_path/libopus_encode`: `audiopus` encoder with the settings of [`OpusEncoder::new`] (VoIP application, voice signal, [`OpusConfig::default`]: 32 kbit/s, complexity 5, in-band FEC on, 10 % expected loss, DTX off), 1500-byte output buffer; checked at start-up to produce byte-identical packets |
//! | `receive_path/pipeline`        | [`ReceivePipeline`] with Opus: `push_packet` + `tick` (jitter buffer, decode, meter, sink = [`NullSink`]) with a fake clock advancing 20 ms per frame | `receive_path/libopus_decode`: `audiopus` decoder decoding the same packets into a 960-sample buffer |
//! | `pcmu_send_path/pipeline`      | [`SendPipeline::next_packet`] with PCMU                   | `pcmu_send_path/g711_encode`: [`Resampler`] 48 → 8 kHz + [`Law::encode_slice`] |
//! | `pcmu_receive_path/pipeline`   | [`ReceivePipeline`] with PCMU, as for Opus                | `pcmu_receive_path/g711_decode`: [`Law::decode_slice`] + [`Resampler`] 8 → 48 kHz |
//! | `sdp/normalize_remote`         | [`normalize_remote_sdp`] on a Chrome offer as sent by JsSIP (BUNDLE, fingerprint, four candidates, Opus/RED/G722/PCMU/PCMA/CN/telephone-event, extmaps, ssrc lines) | `sdp/rtc_unmarshal`: the `rtc` crate's `SessionDescription::unmarshal` of the same text; `sdp/rtc_marshal`: its `marshal` of the parsed description; `sdp/rtc_roundtrip`: both (normalization parses and rebuilds, so this is the like-for-like anchor) |
//! | `sdp_asterisk/*`               | the same on an Asterisk offer (no BUNDLE or mid, PCMU without rtpmap, upper-case fingerprint): the rewrite-heavy case | as for `sdp/*` |
//!
//! G.711 has no external reference library in the dependency tree, so its anchor is the crate's own G.711
//! work composed exactly as [`G711Encoder`] / [`G711Decoder`] compose it (same resampler, same companding
//! tables; the encoder anchor is checked to produce identical bytes), without the codec trait, the frame
//! checks or the decoder's loss-concealment history. The ratio is therefore everything the pipeline and the
//! codec object add on top of the signal processing itself; `receive_steps/pcmu_decoder` shows the codec
//! object's share.
//!
//! Sub-steps, to attribute what the pipelines add (no anchor of their own):
//! - `send_steps/opus_encoder`, `send_steps/pcmu_encoder`: our [`Encoder`] objects alone;
//! - `send_steps/source_read`: the replaying source copying one frame;
//! - `receive_steps/opus_decoder`, `receive_steps/pcmu_decoder`: our [`Decoder`] objects alone;
//! - `receive_steps/jitter_insert_pop`: one packet into the jitter buffer and one frame out;
//! - `receive_steps/meter_process`: [`Meter::process`] with the spectrum every 25th frame on the decoded
//!   voice, as the receive pipeline runs it; `receive_steps/meter_process_tracked`: the same with a frequency tracked, which
//!   computes the spectrum on every frame; `receive_steps/meter_process_silence`: on silence, which skips it.
//!
//! The receive benches check after their loop that every tick decoded a packet except for a few at the start
//! (silence while the jitter buffer fills, a frame skipped or stretched while it settles), and that nothing
//! was lost, late or undecodable: they measure decoding, not concealment. The counts go to stderr.
//!
//! Run: `cargo bench --bench pipeline`, then `scripts/bench-ratios.sh` for the table of medians and ratios
//! (both honour `CARGO_TARGET_DIR`; the medians are in
//! `$CARGO_TARGET_DIR/criterion/<group>/<id>/new/estimates.json`).
//!
//! [`SendPipeline::next_packet`]: webphone::media::pipeline::SendPipeline::next_packet
//! [`ReceivePipeline`]: webphone::media::pipeline::ReceivePipeline
//! [`AudioSource`]: webphone::media::io::source::AudioSource
//! [`OpusEncoder::new`]: webphone::media::codec::opus::OpusEncoder::new
//! [`OpusConfig::default`]: webphone::media::codec::opus::OpusConfig
//! [`NullSink`]: webphone::media::io::sink::NullSink
//! [`Resampler`]: webphone::media::dsp::resample::Resampler
//! [`Law::encode_slice`]: webphone::media::codec::g711::Law::encode_slice
//! [`Law::decode_slice`]: webphone::media::codec::g711::Law::decode_slice
//! [`G711Encoder`]: webphone::media::codec::g711::G711Encoder
//! [`G711Decoder`]: webphone::media::codec::g711::G711Decoder
//! [`normalize_remote_sdp`]: webphone::media::rtc::sdp::normalize_remote_sdp
//! [`Encoder`]: webphone::media::codec::Encoder
//! [`Decoder`]: webphone::media::codec::Decoder
//! [`Meter::process`]: webphone::media::dsp::meter::Meter::process

use std::hint::black_box;
use std::io::Cursor;
use std::time::{Duration, Instant};

use audiopus::coder::{Decoder as LibopusDecoder, Encoder as LibopusEncoder};
use audiopus::packet::Packet;
use audiopus::{Application, Bitrate, Channels, MutSignals, SampleRate, Signal};
use criterion::{Criterion, criterion_group, criterion_main};
use rtc::sdp::SessionDescription;
use webphone::media::FrameDuration;
use webphone::media::codec::g711::Law;
use webphone::media::codec::opus::OpusConfig;
use webphone::media::codec::{self, CodecKind};
use webphone::media::dsp::meter::{Meter, MeterConfig};
use webphone::media::dsp::resample::Resampler;
use webphone::media::io::sink::NullSink;
use webphone::media::io::source::{AudioSource, SyntheticVoice};
use webphone::media::pipeline::{ReceivePipeline, SendPipeline};
use webphone::media::receive::jitter::{JitterBuffer, JitterConfig, Playout};
use webphone::media::rtc::sdp::normalize_remote_sdp;

const FRAME: usize = 960;
const FRAMES: usize = 50;
/// The pipelines' payload buffer (`MAX_PAYLOAD` in `src/media/pipeline.rs`), below libopus' 4000-byte cap.
const PAYLOAD: usize = 1500;
const FRAME_TIME: Duration = Duration::from_millis(20);
/// Ticks at the start of a receive bench that may not decode a packet: silence while the jitter buffer
/// fills (its initial delay is 40 to 60 ms, 2 or 3 ticks) and a frame or two skipped or stretched while it
/// settles on its target delay.
const START_TICKS: u64 = 5;

/// One second of the speech-like test signal ([`SyntheticVoice`]), as 50 frames of 20 ms.
fn voice() -> Vec<Vec<i16>> {
    SyntheticVoice::new().samples(48_000).chunks(FRAME).map(<[i16]>::to_vec).collect()
}

/// Replays precomputed frames in a loop.
struct Replay {
    frames: Vec<Vec<i16>>,
    next: usize,
}

impl Replay {
    fn new(frames: Vec<Vec<i16>>) -> Self {
        Replay { frames, next: 0 }
    }
}

impl AudioSource for Replay {
    fn read(&mut self, out: &mut [i16]) -> bool {
        out.copy_from_slice(&self.frames[self.next]);
        self.next = (self.next + 1) % self.frames.len();
        true
    }
}

/// libopus configured exactly as `webphone::media::codec::opus::OpusEncoder::new` configures it.
fn libopus_encoder() -> LibopusEncoder {
    let config = OpusConfig::default();
    let mut enc = LibopusEncoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip).unwrap();
    enc.set_signal(Signal::Voice).unwrap();
    enc.set_inband_fec(config.fec).unwrap();
    enc.set_dtx(config.dtx).unwrap();
    enc.set_bitrate(Bitrate::BitsPerSecond(i32::try_from(config.bitrate).unwrap())).unwrap();
    enc.set_complexity(config.complexity).unwrap();
    enc.set_packet_loss_perc(config.expected_loss_percent).unwrap();
    enc
}

/// The 48 kHz → 8 kHz → µ-law work of `G711Encoder::encode`, without the codec object.
struct BareG711Encoder {
    down: Resampler,
    buf: [i16; 160],
}

impl BareG711Encoder {
    fn new() -> Self {
        BareG711Encoder { down: Resampler::new(48_000, 8_000).unwrap(), buf: [0; 160] }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        let n = self.down.process(pcm, &mut self.buf).unwrap();
        Law::MuLaw.encode_slice(&self.buf[..n], out)
    }
}

/// The µ-law → 8 kHz → 48 kHz work of `G711Decoder::decode`, without the codec object and its PLC history.
struct BareG711Decoder {
    up: Resampler,
    buf: [i16; 160],
}

impl BareG711Decoder {
    fn new() -> Self {
        BareG711Decoder { up: Resampler::new(8_000, 48_000).unwrap(), buf: [0; 160] }
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        let n = Law::MuLaw.decode_slice(payload, &mut self.buf);
        self.up.process(&self.buf[..n], out).unwrap()
    }
}

/// The frames encoded by our encoder for `kind` (from a fresh encoder).
fn encode_all(kind: CodecKind, pcm: &[Vec<i16>]) -> Vec<Vec<u8>> {
    let mut enc = codec::encoder(kind, FrameDuration::Ms20).unwrap();
    let mut buf = [0u8; PAYLOAD];
    pcm.iter()
        .map(|frame| {
            let n = enc.encode(frame, &mut buf).unwrap();
            buf[..n].to_vec()
        })
        .collect()
}

/// Checks that the anchor and the pipeline produce the same packets from fresh state, so they do the same
/// work: `anchor` encodes one frame into the buffer and returns the length.
fn assert_same_packets(kind: CodecKind, pcm: &[Vec<i16>], mut anchor: impl FnMut(&[i16], &mut [u8]) -> usize) {
    let mut pipeline = SendPipeline::new(Box::new(Replay::new(pcm.to_vec())), kind, 0, FrameDuration::Ms20, 0).unwrap();
    let mut buf = [0u8; PAYLOAD];
    for (i, frame) in pcm.iter().enumerate() {
        let n = anchor(frame, &mut buf);
        let ours = pipeline.next_packet().unwrap();
        assert_eq!(ours.payload, &buf[..n], "{kind}: the anchor and the pipeline differ at frame {i}");
    }
}

fn send_path(c: &mut Criterion, kind: CodecKind, group_name: &str, anchor_name: &str) {
    let pcm = voice();
    let mut group = c.benchmark_group(group_name);
    let mut out = [0u8; PAYLOAD];
    let mut i = 0;
    match kind {
        CodecKind::Opus => {
            let anchor = libopus_encoder();
            assert_same_packets(kind, &pcm, |frame, buf| anchor.encode(frame, buf).unwrap());
            let anchor = libopus_encoder();
            group.bench_function(anchor_name, |b| {
                b.iter(|| {
                    i = (i + 1) % FRAMES;
                    black_box(anchor.encode(black_box(&pcm[i]), &mut out).unwrap())
                })
            });
        }
        _ => {
            let mut anchor = BareG711Encoder::new();
            assert_same_packets(kind, &pcm, |frame, buf| anchor.encode(frame, buf));
            let mut anchor = BareG711Encoder::new();
            group.bench_function(anchor_name, |b| {
                b.iter(|| {
                    i = (i + 1) % FRAMES;
                    black_box(anchor.encode(black_box(&pcm[i]), &mut out))
                })
            });
        }
    }

    let payload_type = kind.default_payload_type();
    let mut pipeline =
        SendPipeline::new(Box::new(Replay::new(pcm.clone())), kind, payload_type, FrameDuration::Ms20, 0).unwrap();
    group.bench_function("pipeline", |b| b.iter(|| black_box(pipeline.next_packet().unwrap().payload.len())));
    let stats = pipeline.stats();
    assert_eq!(stats.frames, stats.packets, "{kind}: the send pipeline skipped frames: {stats:?}");
    assert_eq!(stats.encode_errors, 0);
    group.finish();
}

fn receive_path(c: &mut Criterion, kind: CodecKind, group_name: &str, anchor_name: &str) {
    let packets = encode_all(kind, &voice());
    let mut group = c.benchmark_group(group_name);
    let mut pcm = [0i16; FRAME];
    let mut i = 0;
    match kind {
        CodecKind::Opus => {
            let mut anchor = LibopusDecoder::new(SampleRate::Hz48000, Channels::Mono).unwrap();
            group.bench_function(anchor_name, |b| {
                b.iter(|| {
                    i = (i + 1) % FRAMES;
                    let packet = Packet::try_from(black_box(&packets[i][..])).unwrap();
                    let signals = MutSignals::try_from(&mut pcm[..]).unwrap();
                    black_box(anchor.decode(Some(packet), signals, false).unwrap())
                })
            });
        }
        _ => {
            let mut anchor = BareG711Decoder::new();
            group.bench_function(anchor_name, |b| {
                b.iter(|| {
                    i = (i + 1) % FRAMES;
                    black_box(anchor.decode(black_box(&packets[i]), &mut pcm))
                })
            });
        }
    }

    let payload_type = kind.default_payload_type();
    let mut pipeline = ReceivePipeline::new(
        Box::new(NullSink::new()),
        kind,
        payload_type,
        FrameDuration::Ms20,
        JitterConfig::new(FrameDuration::Ms20, kind.clock_rate()),
    )
    .unwrap();
    let step = kind.timestamp_increment(FrameDuration::Ms20);
    let start = Instant::now();
    let mut ticks: u64 = 0;
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    group.bench_function("pipeline", |b| {
        b.iter(|| {
            let now = start + Duration::from_millis(20 * ticks);
            pipeline.push_packet(payload_type, seq, ts, black_box(&packets[usize::from(seq) % FRAMES]), now);
            let analysis = pipeline.tick(now);
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(step);
            ticks += 1;
            black_box(analysis)
        })
    });
    group.finish();

    // The pipeline must have decoded a packet on every tick past the start: a bench that spent its time
    // concealing would not measure the receive path. While the buffer settles on its target delay it may
    // skip or stretch a frame or two; the bound on those does not grow with the iteration count.
    let stats = pipeline.stats();
    let j = stats.jitter;
    eprintln!("{group_name}/pipeline: {ticks} ticks, {stats:?}");
    assert!(
        stats.frames_decoded + START_TICKS >= ticks,
        "{kind}: only {} of {ticks} ticks decoded a packet: {stats:?}",
        stats.frames_decoded
    );
    assert!(stats.frames_concealed + stats.frames_recovered + j.skipped <= START_TICKS, "{kind}: {stats:?}");
    assert_eq!(stats.decode_errors + j.lost + j.late + j.discarded + j.resyncs, 0, "{kind}: {stats:?}");
}

fn opus(c: &mut Criterion) {
    send_path(c, CodecKind::Opus, "send_path", "libopus_encode");
    receive_path(c, CodecKind::Opus, "receive_path", "libopus_decode");
}

fn pcmu(c: &mut Criterion) {
    send_path(c, CodecKind::Pcmu, "pcmu_send_path", "g711_encode");
    receive_path(c, CodecKind::Pcmu, "pcmu_receive_path", "g711_decode");
}

fn send_steps(c: &mut Criterion) {
    let pcm = voice();
    let mut group = c.benchmark_group("send_steps");
    let mut out = [0u8; PAYLOAD];
    for (kind, name) in [(CodecKind::Opus, "opus_encoder"), (CodecKind::Pcmu, "pcmu_encoder")] {
        let mut enc = codec::encoder(kind, FrameDuration::Ms20).unwrap();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % FRAMES;
                black_box(enc.encode(black_box(&pcm[i]), &mut out).unwrap())
            })
        });
    }
    let mut source = Replay::new(pcm);
    let mut frame = [0i16; FRAME];
    group.bench_function("source_read", |b| b.iter(|| black_box(source.read(black_box(&mut frame)))));
    group.finish();
}

fn receive_steps(c: &mut Criterion) {
    let pcm = voice();
    let mut group = c.benchmark_group("receive_steps");
    let mut out = [0i16; FRAME];
    for (kind, name) in [(CodecKind::Opus, "opus_decoder"), (CodecKind::Pcmu, "pcmu_decoder")] {
        let packets = encode_all(kind, &pcm);
        let mut dec = codec::decoder(kind, FrameDuration::Ms20).unwrap();
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % FRAMES;
                black_box(dec.decode(black_box(&packets[i]), &mut out).unwrap())
            })
        });
    }

    let packets = encode_all(CodecKind::Opus, &pcm);
    let mut jb = JitterBuffer::new(JitterConfig::new(FrameDuration::Ms20, 48_000));
    let start = Instant::now();
    let (mut seq, mut ts, mut ticks) = (0u16, 0u32, 0u32);
    group.bench_function("jitter_insert_pop", |b| {
        b.iter(|| {
            let now = start + FRAME_TIME * ticks;
            jb.insert(seq, ts, black_box(&packets[usize::from(seq) % FRAMES]), now);
            let len = match jb.pop(now) {
                Playout::Frame(p) => p.len(),
                Playout::Lost { next } => next.map_or(0, <[u8]>::len),
                Playout::Waiting => 0,
            };
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(960);
            ticks += 1;
            black_box(len)
        })
    });

    // The meter sees what the decoder produced.
    let mut dec = codec::decoder(CodecKind::Opus, FrameDuration::Ms20).unwrap();
    let decoded: Vec<Vec<i16>> = packets
        .iter()
        .map(|p| {
            let n = dec.decode(p, &mut out).unwrap();
            out[..n].to_vec()
        })
        .collect();
    // As the receive pipeline configures it: the spectrum every 25th frame.
    let mut meter = Meter::with_config(MeterConfig { spectrum_interval: 25, ..MeterConfig::default() });
    let mut i = 0;
    group.bench_function("meter_process", |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            black_box(meter.process(black_box(&decoded[i])))
        })
    });
    // A tracked frequency makes the meter compute the spectrum on every frame (as tests that track a tone do).
    let mut meter = Meter::new();
    meter.track(1000.0);
    group.bench_function("meter_process_tracked", |b| {
        b.iter(|| {
            i = (i + 1) % FRAMES;
            black_box(meter.process(black_box(&decoded[i])))
        })
    });
    // A silent window skips the spectrum: what is left is the per-frame level, window energy and publication.
    let mut meter = Meter::new();
    let silence = [0i16; FRAME];
    group.bench_function("meter_process_silence", |b| b.iter(|| black_box(meter.process(black_box(&silence)))));
    group.finish();
}

/// The committed fuzz seeds (`fuzz/seeds/sdp/`), with the CRLF line ends of the wire; they are the offers the
/// SDP unit tests use: Chrome 13x as sent by JsSIP (host candidates, an RTCP one, a TCP one and an mDNS one)
/// and Asterisk 18 (chan_pjsip, webrtc=yes, bundle=no: PCMU without rtpmap, upper-case fingerprint hash).
fn offer(seed: &str) -> String {
    seed.replace('\n', "\r\n")
}

fn unmarshal(sdp: &str) -> SessionDescription {
    SessionDescription::unmarshal(&mut Cursor::new(sdp)).unwrap()
}

fn sdp_group(c: &mut Criterion, group_name: &str, offer: &str) {
    // Both sides must accept the text, and the normalized SDP must still be one `rtc` parses.
    let parsed = unmarshal(offer);
    assert_eq!(parsed.media_descriptions.len(), 1);
    unmarshal(&normalize_remote_sdp(offer).unwrap());

    let mut group = c.benchmark_group(group_name);
    group.bench_function("normalize_remote", |b| b.iter(|| black_box(normalize_remote_sdp(black_box(offer)).unwrap())));
    group.bench_function("rtc_unmarshal", |b| b.iter(|| black_box(unmarshal(black_box(offer)))));
    group.bench_function("rtc_marshal", |b| b.iter(|| black_box(black_box(&parsed).marshal())));
    group.bench_function("rtc_roundtrip", |b| b.iter(|| black_box(unmarshal(black_box(offer)).marshal())));
    group.finish();
}

fn sdp(c: &mut Criterion) {
    sdp_group(c, "sdp", &offer(include_str!("../fuzz/seeds/sdp/chrome-jssip-offer.sdp")));
    sdp_group(c, "sdp_asterisk", &offer(include_str!("../fuzz/seeds/sdp/asterisk-offer.sdp")));
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = opus, pcmu, send_steps, receive_steps, sdp
}
criterion_main!(benches);
