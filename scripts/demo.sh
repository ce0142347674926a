#!/usr/bin/env bash
# The main job: `webphone demo`. Two phones in one process register with a
# built-in relay on 127.0.0.1 and call each other with real WebRTC audio
# (Opus, DTLS-SRTP, ICE on loopback); each plays a tone and detects the
# other's. Needs no server. Installs what the build needs first (libopus),
# and runs inside a loopback-only network namespace for good measure.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked --features cli --bin webphone
exec scripts/in-netns.sh target/debug/webphone demo "$@"
