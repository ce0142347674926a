//! A test-side WebRTC peer's helpers: wait until it is connected, and send
//! an Opus-encoded 1 kHz tone from it every 20 ms.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::task::JoinHandle;
use webphone::media::FrameDuration;
use webphone::media::codec::{CodecKind, encoder};
use webphone::media::io::source::{AudioSource, Tone};
use webphone::media::rtc::peer::{Peer, PeerState, SendOutcome};

use super::TIMEOUT;

/// Waits (generously) until `peer` is connected.
pub async fn wait_connected(peer: &Peer) {
    let mut state = peer.state();
    tokio::time::timeout(TIMEOUT, state.wait_for(|s| *s == PeerState::Connected))
        .await
        .expect("test peer connected in time")
        .expect("test peer state");
}

/// Sends Opus of a 1 kHz tone on `payload_type` every 20 ms: at least
/// `min_packets`, then until `stop` is set (at most 500 packets). The task
/// returns how many packets went out.
pub fn send_tone(peer: Arc<Peer>, payload_type: u8, min_packets: u32, stop: Arc<AtomicBool>) -> JoinHandle<u32> {
    tokio::spawn(async move {
        let mut enc = encoder(CodecKind::Opus, FrameDuration::Ms20).expect("opus encoder");
        let mut tone = Tone::new(1000.0, -12.0);
        let mut pcm = vec![0i16; FrameDuration::Ms20.samples()];
        let mut out = vec![0u8; 1500];
        let mut ts: u32 = rand::random();
        let mut tick = tokio::time::interval(FrameDuration::Ms20.duration());
        let mut sent = 0u32;
        for i in 0..500u32 {
            if stop.load(Ordering::Relaxed) && sent >= min_packets {
                break;
            }
            tick.tick().await;
            tone.read(&mut pcm);
            let n = enc.encode(&pcm, &mut out).expect("encode");
            match peer.send_rtp(payload_type, i == 0, ts, &out[..n]).await.expect("send_rtp") {
                SendOutcome::Sent => sent += 1,
                SendOutcome::Dropped(why) => panic!("test peer could not send: {why}"),
            }
            ts = ts.wrapping_add(960);
        }
        sent
    })
}
