//! The runtime all call media runs on.

use std::sync::OnceLock;

use tokio::task::JoinHandle;

/// The runtime all call media runs on: the peers (webrtc's driver tasks) and
/// the audio tasks, with twice as many worker threads as cores, built on
/// first use and shared by every phone of the process.
///
/// Its own runtime because an audio tick is a deadline: on the application's
/// runtime it can wait behind the application's work, and on one worker per
/// core it waits behind other calls' encodes (a worker busy with a burst of
/// encodes is not preempted by the runtime). With twice the workers the
/// kernel time-slices them: on 2 cores, 60 two-way calls ran 0.17–0.8 % of
/// their ticks late on one shared 2-worker runtime, 0.07–0.27 % on this one
/// (`examples/load`, three runs each).
/// If the runtime cannot be built, media runs on the caller's runtime.
fn media_runtime() -> Option<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2 * cores)
                .thread_name("webphone-media")
                .enable_all()
                .build()
                .map_err(|e| tracing::warn!("media runtime: {e}; media runs on the caller's runtime"))
                .ok()
        })
        .as_ref()
}

/// Spawns a media task on the media runtime.
pub(crate) fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match media_runtime() {
        Some(rt) => rt.spawn(task),
        None => tokio::spawn(task),
    }
}
