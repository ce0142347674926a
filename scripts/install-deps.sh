#!/usr/bin/env bash
# Installs the system packages the build, the tests and the demo need, when
# missing: libopus (Opus codec), the ALSA headers (to build the `device`
# feature), Kamailio with its WebSocket and TLS modules (the real SIP server
# the tests use), iproute2 (to bring loopback up in a fresh network
# namespace), nftables (real packet loss in that namespace) and espeak-ng
# (speech for the DTMF detector's false-detection test).
set -euo pipefail

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

if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
