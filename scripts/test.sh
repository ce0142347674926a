#!/usr/bin/env bash
# Runs every test: unit and property tests, the RFC 4475 conformance suite,
# and the integration scenarios against a real Kamailio. Installs what is
# missing first. Sockets are only ever opened inside a loopback-only
# network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# Build (and fetch crates) outside the namespace: it has no network.
cargo build --locked --all-targets
cargo check --locked --features device --lib
cargo check --locked --manifest-path fuzz/Cargo.toml
scripts/in-netns.sh cargo test --locked --offline --all-targets --no-fail-fast
scripts/in-netns.sh cargo test --locked --offline --doc
