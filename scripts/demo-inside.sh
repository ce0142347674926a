#!/usr/bin/env bash
# Second half of demo.sh, run inside the loopback-only namespace.
set -euo pipefail
dir=$(mktemp -d)
port=5080
trap 'kill -- -"$(cat "$dir/pgid" 2>/dev/null || echo 0)" 2>/dev/null || true; rm -rf "$dir"' EXIT

users=$'\t$sht(users=>alice) = "alice-demo-pw";\n\t$sht(users=>bob) = "bob-demo-pw";'
sed -e "s/@LISTEN_PORT@/$port/g" -e "s/@DOMAIN@/example.com/g" -e "s/@TLS@//" tests/support/kamailio.cfg.in \
    | awk -v users="$users" '{ if ($0 ~ /@USERS@/) print users; else print }' > "$dir/kamailio.cfg"
setsid /usr/sbin/kamailio -f "$dir/kamailio.cfg" -DD -E -m 32 -M 8 -Y "$dir" -w "$dir" -P "$dir/kamailio.pid" \
    > "$dir/kamailio.log" 2>&1 &
echo $! > "$dir/pgid"
for _ in $(seq 1 500); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.02
done
echo "Kamailio listening on ws://127.0.0.1:$port (domain example.com)"
WEBPHONE_PASSWORD=alice-demo-pw target/debug/examples/webphone register \
    --server "ws://127.0.0.1:$((port + 1))" --server "ws://127.0.0.1:$port" \
    --user alice --domain example.com --duration 3 --report "$dir/report.json"
echo "report:"
cat "$dir/report.json"
