#!/usr/bin/env bash
# The demo: learn profiles from the bundled event stream, validate them, and review
# what changed since the previous release, as a pull request would show it. Then, as
# root, the whole path for real (live.sh): a local registry and Alertmanager, learn,
# push, sign, attest, enforce, and the alert.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build --release --locked -q -p imprint-cli
imprint=target/release/imprint
out=${IMPRINT_DEMO_OUT:-out/demo}
rm -rf "$out" && mkdir -p "$out"

echo "## imprint learn: two web replicas and a log shipper, one profile per image digest"
$imprint learn --events examples/demo/events.jsonl -o "$out/profiles"
$imprint learn --events examples/demo/baseline-events.jsonl -o "$out/baseline" 2>/dev/null

echo
echo "## imprint validate"
$imprint validate "$out"/profiles/*.yaml

new="$out/profiles/sha256-5b0f3a8c2d1e4f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8.yaml"
old="$out/baseline/sha256-0e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091.yaml"
echo
echo "## the learned profile of registry.example/shop/web:2.4.1"
cat "$new"

echo
echo "## imprint diff: what 2.4.1 does that 2.4.0 did not (exit 1: they differ)"
$imprint diff "$old" "$new" || [ $? -eq 1 ]

echo
echo "## imprint export seccomp: the syscalls as a seccomp profile"
$imprint export seccomp "$new" -o "$out/web.seccomp.json"
echo "wrote $out/web.seccomp.json"

echo
echo "## the live path on this host (examples/demo/live.sh)"
bash examples/demo/live.sh
