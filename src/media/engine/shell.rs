//! A call's audio task: a thin async shell around its [`CallAudio`]
//! machine. It sleeps until the machine's `poll_timeout`, feeds it received
//! RTP, renegotiations and controls, and sends the packets and reports the
//! events that come out. The only clock it reads is tokio's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::contract::CallKey;
use crate::media::engine::call_audio::{AudioControl, AudioEvent, CallAudio};
use crate::media::engine::calls::{MediaControl, MediaResult};
use crate::media::io::recording::{Recorder, RecordingDone};
use crate::media::rtc::peer::{Negotiated, Peer, PeerState};
use crate::media::setup::{AudioSetup, MediaConfig};
use crate::media::stats::CallStats;

/// What the engine tells a call's audio task.
pub(crate) enum AudioInput {
    /// A new offer/answer exchange completed (codec, payload type, direction).
    Renegotiated(Negotiated),
    /// Mute, volume, source, sink.
    Control(MediaControl),
}

/// What an audio task starts from.
pub(crate) struct AudioStart {
    pub(crate) setup: AudioSetup,
    pub(crate) stats: Arc<Mutex<CallStats>>,
    pub(crate) inputs: mpsc::UnboundedReceiver<AudioInput>,
}

/// The call's audio task: waits for the connection, then drives the call's
/// [`CallAudio`] until aborted: sleeps until it must be woken, feeds it
/// RTP, renegotiations and controls, and sends what comes out. The only
/// clock read is tokio's.
pub(crate) async fn run_audio(
    call: CallKey,
    peer: Arc<Peer>,
    negotiated: Negotiated,
    start: AudioStart,
    cfg: MediaConfig,
    tx: mpsc::UnboundedSender<MediaResult>,
) {
    let AudioStart { setup, stats, mut inputs } = start;
    // Opening files or audio devices may block: not on an async worker; and
    // while ICE and DTLS connect, so the first frame goes out once they have.
    let building = tokio::task::spawn_blocking(move || setup.build());
    if let Err(reason) = wait_connected(peer.state(), cfg.connect_timeout).await {
        let _ = tx.send(MediaResult::Failed { call, reason });
        return;
    }
    let mut rtp_in = peer.take_rtp_receiver();
    let built = building.await;
    let built = match built.unwrap_or_else(|e| Err(format!("opening audio: {e}"))) {
        Ok(parts) => parts,
        Err(reason) => {
            let _ = tx.send(MediaResult::Failed { call, reason });
            return;
        }
    };
    let first_ts = rand::rng().random::<u32>();
    let mut audio = match CallAudio::new(&cfg, negotiated, built, first_ts, Instant::now()) {
        Ok(audio) => audio,
        Err(e) => {
            let _ = tx.send(MediaResult::Failed { call, reason: format!("codec: {e}") });
            return;
        }
    };
    let mut state = peer.state();
    // Sources and sinks being opened for a control (off the audio task).
    let mut opening: JoinSet<Result<AudioControl, String>> = JoinSet::new();
    let mut timer = Box::pin(tokio::time::sleep_until(audio.poll_timeout()));
    loop {
        while let Some(p) = audio.poll_transmit() {
            // Drops (counted and logged once per streak by the peer) are not logged per frame.
            let _ = peer.send_rtp(p.payload_type, p.marker, p.timestamp, p.payload).await;
        }
        while let Some(event) = audio.poll_event() {
            let result = match event {
                AudioEvent::Quality(alert) => MediaResult::Quality { call, alert },
                AudioEvent::SourceEnded => MediaResult::SourceEnded { call },
                AudioEvent::DtmfReceived { digit, duration_ms, method } => {
                    MediaResult::Dtmf { call, digit, duration_ms, method }
                }
                AudioEvent::DtmfSent { digit, method } => MediaResult::DtmfSent { call, digit, method },
                AudioEvent::DtmfInfoDue { digit, duration_ms } => MediaResult::DtmfInfoDue { call, digit, duration_ms },
            };
            let _ = tx.send(result);
        }
        if audio.stats_due()
            && let Ok(mut s) = stats.try_lock()
        {
            audio.publish_stats(&mut s, Instant::now());
        }
        let wake = audio.poll_timeout();
        if timer.deadline() != wake {
            timer.as_mut().reset(wake);
        }
        tokio::select! {
            () = &mut timer => audio.handle_timeout(Instant::now()),
            input = inputs.recv() => match input {
                Some(AudioInput::Renegotiated(n)) => {
                    let from = audio.codec();
                    if let Err(e) = audio.handle_negotiated(n, Instant::now()) {
                        let _ = tx.send(MediaResult::Failed { call, reason: format!("codec: {e}") });
                        return;
                    }
                    if from != n.codec {
                        tracing::debug!(%call, ?from, to = ?n.codec, "codec renegotiated");
                    }
                }
                Some(AudioInput::Control(c)) => match c {
                    MediaControl::MuteSend(m) => audio.handle_control(AudioControl::MuteSend(m)),
                    MediaControl::MuteReceive(m) => audio.handle_control(AudioControl::MuteReceive(m)),
                    MediaControl::Volume(v) => audio.handle_control(AudioControl::Volume(v)),
                    MediaControl::LocalHold(h) => audio.handle_control(AudioControl::LocalHold(h)),
                    MediaControl::SendAudio(send) => {
                        opening.spawn_blocking(move || send.build().map(AudioControl::Source));
                    }
                    MediaControl::ReceiveAudio(receive) => {
                        opening.spawn_blocking(move || receive.build().map(AudioControl::Sink));
                    }
                    MediaControl::Dtmf { steps, method } => audio.handle_control(AudioControl::Dtmf { steps, method }),
                    MediaControl::Record(None) => audio.handle_control(AudioControl::Record(None)),
                    MediaControl::Record(Some((path, channels))) => {
                        // The writer thread creates the file: applied in order
                        // with the other controls, a stop that follows stops it.
                        let tx = tx.clone();
                        let done = move |d: RecordingDone| {
                            let _ = tx.send(MediaResult::RecordingDone { call, path: d.path, error: d.error });
                        };
                        match Recorder::start(&path, channels, done) {
                            Ok(r) => audio.handle_control(AudioControl::Record(Some(r))),
                            Err(reason) => tracing::warn!(%call, %reason, "could not record the call"),
                        }
                    }
                },
                // The engine dropped the call.
                None => return,
            },
            Some(opened) = opening.join_next() => match opened {
                Ok(Ok(control)) => audio.handle_control(control),
                Ok(Err(reason)) => tracing::warn!(%call, %reason, "could not change the call's audio"),
                Err(e) => tracing::warn!(%call, error = %e, "could not change the call's audio"),
            },
            changed = state.changed() => {
                let gone = changed.is_err() || matches!(*state.borrow(), PeerState::Failed | PeerState::Closed);
                if gone {
                    let _ = tx.send(MediaResult::Failed { call, reason: "media connection lost".into() });
                    return;
                }
            }
            pkt = async {
                match rtp_in.as_mut() {
                    Some(rx) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => match pkt {
                Some(p) => {
                    let arrival = Instant::from_std(p.arrival);
                    audio.handle_rtp(p, arrival);
                }
                None => rtp_in = None,
            },
        }
    }
}

async fn wait_connected(mut state: watch::Receiver<PeerState>, timeout: Duration) -> Result<(), String> {
    let wait = async {
        loop {
            match *state.borrow_and_update() {
                PeerState::Connected => return Ok(()),
                PeerState::Failed => return Err("ICE/DTLS failed".to_string()),
                PeerState::Closed => return Err("peer closed".to_string()),
                _ => {}
            }
            if state.changed().await.is_err() {
                return Err("peer gone".to_string());
            }
        }
    };
    tokio::time::timeout(timeout, wait).await.map_err(|_| format!("media not connected within {timeout:?}"))?
}
