#!/usr/bin/env bash
# Installs the system packages the build, the tests and the demo need, when
# missing: libopus (Opus codec), the ALSA headers (to build the `device`
# feature), Kamailio with its WebSocket and TLS modules (the real SIP server
# the tests use), iproute2 (to bring loopback up in a fresh network
# namespace), nftables (real packet loss in that namespace) and espeak-ng
# (speech for the DTMF detector's false-detection test).
#
# With --tests, also what only the tests need: Debian's Chromium and the
# browser peer's node modules (tests/browser: JsSIP, playwright-core,
# esbuild, pinned by its package-lock.json; `npm ci` needs Node.js 20 or
# later and the npm registry, so it runs here, outside the test namespace).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=false
[ "${1:-}" = --tests ] && tests=true

missing=()
[ -x /usr/sbin/kamailio ] || missing+=(kamailio)
ls /usr/lib/*/kamailio/modules/websocket.so >/dev/null 2>&1 || missing+=(kamailio-websocket-modules)
ls /usr/lib/*/kamailio/modules/tls.so >/dev/null 2>&1 || missing+=(kamailio-tls-modules)
command -v ip >/dev/null || missing+=(iproute2)
# libopus for the Opus codec (audiopus links it through pkg-config)
pkg-config --exists opus 2>/dev/null || missing+=(libopus-dev pkg-config)
command -v unshare >/dev/null || missing+=(util-linux)
# nftables: the impaired-network test drops a share of UDP in its namespace
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || missing+=(nftables)
# espeak-ng: tests/dtmf_speech.rs speaks paragraphs at test time (and fails without it)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
# ALSA headers for the `device` feature (cpal's alsa-sys finds libasound through pkg-config)
dpkg -s libasound2-dev >/dev/null 2>&1 || missing+=(libasound2-dev)
# Chromium for the browser peer (tests/browser_jssip.rs)
$tests && { [ -x /usr/bin/chromium ] || missing+=(chromium); }

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if $tests; then
    node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
    if [ "$node_major" -lt 20 ]; then
        echo "error: the browser peer (tests/browser) needs Node.js 20 or later with npm;" \
            "found: $(node --version 2>/dev/null || echo no node)" >&2
        exit 1
    fi
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi
