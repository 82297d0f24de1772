#!/bin/bash
# Usage: benchmarks/shallow_base.sh [WORKDIR]  (run from the repository root, venv built)
# Base: one 64 MiB incompressible layer (dir-image, plain tar) in registry A; a nix image on it.
set -euo pipefail
R=$PWD; . $R/.venv/bin/activate
W=${1:-/tmp/lf-shallow-bench}; rm -rf $W/run; mkdir -p $W/run; cd $W/run
export LAYERFORGE_CACHE_DIR=$W/run/cache DOCKER_CONFIG=$W/run/dc NIX_CONFIG=$'sandbox = false\nbuild-users-group =\nsubstituters =\n'
for n in a b; do
  p=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  mkdir -p $n; cat > $n/c.yml <<Y
version: 0.1
storage: {filesystem: {rootdirectory: $W/run/$n/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$p}
log: {level: error, accesslog: {disabled: true}}
Y
  docker-registry serve $n/c.yml >/dev/null 2>&1 & echo $! > $n/pid; eval "${n^^}=127.0.0.1:$p"
done
trap 'kill $(cat a/pid) $(cat b/pid)' EXIT
for i in $(seq 50); do curl -fs http://$A/v2/ >/dev/null && curl -fs http://$B/v2/ >/dev/null && break; sleep 0.1; done
mkdir -p tree/data && head -c 64M /dev/urandom > tree/data/blob
layerforge dir-image tree --out base --tag v1 --compression none >/dev/null
skopeo copy -q --dest-tls-verify=false --preserve-digests oci:base:v1 docker://$A/big/base:1
BB=$(nix-build $R/tests/fixtures/nix/images.nix -A busyboxPkg --no-out-link 2>/dev/null)
echo "== layerforge pull --shallow"; layerforge pull $A/big/base:1 --out shallow --tag b --shallow
echo "shallow layout: $(du -sb shallow | cut -f1) bytes"
echo "== nix-image on it"; layerforge nix-image --store-path $BB --from-image shallow:b --out app --tag latest --entrypoint "[\"$BB/bin/busybox\"]" >/dev/null
echo "app layout: $(du -sb app | cut -f1) bytes"
echo "== push to the base's registry"; /usr/bin/time -f "%e s" layerforge push app:latest $A/team/app:1
echo "== push to another registry"; /usr/bin/time -f "%e s" layerforge push app:latest $B/team/app:1
echo "== for comparison: full pull"; layerforge pull $A/big/base:1 --out full --tag b
echo "full layout: $(du -sb full | cut -f1) bytes"
