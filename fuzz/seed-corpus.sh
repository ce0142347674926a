#!/usr/bin/env bash
# Seeds fuzz/corpus/sip_message with the RFC 4475 torture messages from the
# shared conformance set beside the clone (the corpus directory is not
# committed). Then run, from the repository root:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run sip_message -- -max_total_time=600
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${1:-$here/../../shared/conformance/rfc4475}"
dst="$here/corpus/sip_message"
if ! ls "$src"/*.dat >/dev/null 2>&1; then
    echo "no RFC 4475 messages in $src (pass the directory as the first argument)" >&2
    exit 1
fi
mkdir -p "$dst"
cp "$src"/*.dat "$dst"/
echo "seeded $dst with $(ls "$src"/*.dat | wc -l) messages"
