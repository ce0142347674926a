#!/usr/bin/env bash
# Prints the medians of the benches in benches/pipeline.rs next to their anchors, and the ratio
# ours / anchor (1.00 = no overhead over the codec or parser alone).
#
# Run after `cargo bench --bench pipeline`. Reads
# $CARGO_TARGET_DIR/criterion/<group>/<id>/new/estimates.json (CARGO_TARGET_DIR defaults to
# target, relative to the crate root). Exits non-zero when an estimate is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CRITERION_DIR="${CARGO_TARGET_DIR:-target}/criterion" python3 - <<'EOF'
import json
import os
import sys

root = os.environ["CRITERION_DIR"]

# (pair, anchor "group/id", ours "group/id")
PAIRS = [
    ("opus send", "send_path/libopus_encode", "send_path/pipeline"),
    ("opus receive", "receive_path/libopus_decode", "receive_path/pipeline"),
    ("pcmu send", "pcmu_send_path/g711_encode", "pcmu_send_path/pipeline"),
    ("pcmu receive", "pcmu_receive_path/g711_decode", "pcmu_receive_path/pipeline"),
    ("sdp chrome vs unmarshal", "sdp/rtc_unmarshal", "sdp/normalize_remote"),
    ("sdp chrome vs roundtrip", "sdp/rtc_roundtrip", "sdp/normalize_remote"),
    ("sdp asterisk vs unmarshal", "sdp_asterisk/rtc_unmarshal", "sdp_asterisk/normalize_remote"),
    ("sdp asterisk vs roundtrip", "sdp_asterisk/rtc_roundtrip", "sdp_asterisk/normalize_remote"),
]
# Sub-steps, printed on their own for attribution.
STEPS = [
    "sdp/rtc_marshal",
    "sdp_asterisk/rtc_marshal",
    "send_steps/opus_encoder",
    "send_steps/pcmu_encoder",
    "send_steps/source_read",
    "receive_steps/opus_decoder",
    "receive_steps/pcmu_decoder",
    "receive_steps/jitter_insert_pop",
    "receive_steps/meter_process",
    "receive_steps/meter_process_tracked",
    "receive_steps/meter_process_silence",
]

missing = []


def median(bench):
    path = os.path.join(root, *bench.split("/"), "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"]
    except (OSError, KeyError, ValueError):
        missing.append(path)
        return None


def ns(v):
    return "-" if v is None else f"{v:,.0f}"


print(f"{'pair':<27} {'anchor':<31} {'anchor ns':>11} {'ours ns':>11} {'ours/anchor':>11}")
for pair, anchor, ours in PAIRS:
    a, o = median(anchor), median(ours)
    ratio = "-" if a is None or o is None or a == 0 else f"{o / a:.2f}"
    print(f"{pair:<27} {anchor:<31} {ns(a):>11} {ns(o):>11} {ratio:>11}")

print()
print(f"{'step':<39} {'median ns':>11}")
for step in STEPS:
    print(f"{step:<39} {ns(median(step)):>11}")

if missing:
    print(f"\nmissing estimates ({len(missing)}), run `cargo bench --bench pipeline` first:", file=sys.stderr)
    for path in missing:
        print(f"  {path}", file=sys.stderr)
    sys.exit(1)
EOF
