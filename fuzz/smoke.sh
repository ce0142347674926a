#!/usr/bin/env bash
# CI smoke run of every fuzz target: builds them with stable cargo (no
# coverage instrumentation, so libFuzzer mutates blindly) and feeds each the
# committed seeds plus 20,000 random inputs of up to 4 KiB. It proves the
# targets build and that their seeds and a burst of junk do not crash; real
# fuzzing is `cargo fuzz run TARGET` (see seed-corpus.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --locked --offline --manifest-path "$root/fuzz/Cargo.toml"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
rfc4475="$root/../shared/conformance/rfc4475"
for target in sip_message sdp rtp jitter_buffer telephone_event dtmf_info control_request early_check; do
    seeds=()
    case $target in
        sdp) seeds=("$root/fuzz/seeds/sdp") ;;
        sip_message) [ -d "$rfc4475" ] && seeds=("$rfc4475") ;;
    esac
    mkdir -p "$scratch/$target"
    "$CARGO_TARGET_DIR/debug/$target" -runs=20000 -len_control=0 -max_len=4096 -seed=1 \
        "$scratch/$target" "${seeds[@]}" 2>"$scratch/$target.log" \
        || { tail -40 "$scratch/$target.log"; exit 1; }
    echo "fuzz smoke $target: $(grep -E '^Done' "$scratch/$target.log")"
done
