#!/usr/bin/env bash
# Runs every test: unit and property tests, the RFC 4475 conformance suite,
# and the integration scenarios against a real Kamailio. Installs what is
# missing first. Sockets are only ever opened inside a loopback-only
# network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

# Never rule: the media engine does not know the SIP core; the two share only
# crate::contract. Checked first, before anything is built.
if grep -rnE 'crate::dialog|super::super::dialog|crate::\{[^}]*\bdialog\b' src/media/; then
    echo "error: src/media/ uses the SIP core (crate::dialog) on the lines above;" \
        "media may depend only on crate::contract (move the shared type there)" >&2
    exit 1
fi

scripts/install-deps.sh --tests
# Build (and fetch crates) outside the namespace: it has no network.
cargo build --locked --all-targets --features cli
cargo check --locked --features device --lib
cargo check --locked --no-default-features --lib
# The benches must compile (they are run by hand: see the README).
cargo bench --locked --no-run
# Fuzz targets: built here, then run briefly on their seeds and random input.
CARGO_TARGET_DIR="$PWD/target" cargo build --locked --manifest-path fuzz/Cargo.toml
scripts/in-netns.sh cargo test --locked --offline --all-targets --features cli --no-fail-fast
scripts/in-netns.sh cargo test --locked --offline --doc
scripts/in-netns.sh fuzz/smoke.sh
