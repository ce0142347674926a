#!/usr/bin/env bash
# The main job, for now: start a real Kamailio (SIP over WebSocket, digest
# auth) on loopback inside a private network namespace, then run the
# `webphone` CLI against it: register, stay registered 3 s, unregister.
# Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cargo build --locked --example webphone
exec scripts/in-netns.sh bash scripts/demo-inside.sh
