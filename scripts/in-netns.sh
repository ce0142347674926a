#!/usr/bin/env bash
# Runs a command inside a new network namespace that has only loopback, so
# nothing it opens can reach another interface. As root: `unshare -n`; as
# a normal user: a user namespace maps us to root first (`unshare -rn`).
set -euo pipefail
if [ "$(id -u)" = 0 ]; then flags=(-n); else flags=(-r -n); fi
exec unshare "${flags[@]}" -- bash -c 'ip link set lo up && exec "$@"' in-netns "$@"
