#!/usr/bin/env bash
# Seeds the fuzz corpora (the corpus directories are not committed):
# - fuzz/corpus/sdp with the remote offers committed in fuzz/seeds/sdp
#   (Chrome through JsSIP, Asterisk, FreeSWITCH, a plain SIP trunk);
# - fuzz/corpus/sip_message with the RFC 4475 torture messages from the
#   shared conformance set beside the clone (or the directory given as the
#   first argument).
# The rtp, jitter_buffer, telephone_event and dtmf_info targets take
# structured input and start empty.
# Then run, from the repository root, e.g.:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run sip_message -- -max_total_time=600
#   RUSTC_BOOTSTRAP=1 cargo fuzz run sdp -- -max_total_time=600
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

dst="$here/corpus/sdp"
mkdir -p "$dst"
cp "$here"/seeds/sdp/*.sdp "$dst"/
echo "seeded $dst with $(ls "$here"/seeds/sdp/*.sdp | wc -l) offers"

src="${1:-$here/../../shared/conformance/rfc4475}"
dst="$here/corpus/sip_message"
if ! ls "$src"/*.dat >/dev/null 2>&1; then
    echo "no RFC 4475 messages in $src (pass the directory as the first argument)" >&2
    exit 1
fi
mkdir -p "$dst"
cp "$src"/*.dat "$dst"/
echo "seeded $dst with $(ls "$src"/*.dat | wc -l) messages"
