#!/usr/bin/env bash
# Packs the package (prepack bundles libtasker_worker for this host), installs the tarball into an empty
# project, and runs a small program against it on Node (ESM and CJS), Bun and Deno with no
# TASKER_LIBRARY_PATH: the bundled library must be found and work.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg_dir="$PWD"
work="$(mktemp -d "$pkg_dir/../target/pack-smoke.XXXXXX")"  # not under /tmp: Deno reads every deno.json above its cwd
trap 'rm -rf "$work"' EXIT
npm pack --silent --pack-destination "$work" >/dev/null
tarball="$(ls "$work"/*.tgz)"
# The package stays small (issue 17: <= 8 MB): the bundled library is stripped.
size="$(stat -c %s "$tarball")"
echo "pack-smoke: $(basename "$tarball") is $((size / 1024)) KiB"
[ "$size" -le $((8 * 1000 * 1000)) ] || { echo "pack-smoke: the tarball is $size bytes, over 8 MB" >&2; exit 1; }
# The listing is read whole first: `grep -q` exiting early would SIGPIPE tar and fail the pipeline.
listing="$(tar -tzf "$tarball")"
grep -q "package/native/$(node -p 'process.platform + "-" + process.arch')/libtasker_worker" <<<"$listing" \
  || { echo "pack-smoke: the tarball does not bundle the native library" >&2; exit 1; }
# The build keeps `node:`-prefixed imports as written (tsup's removeNodeProtocol: false).
if grep -nE "(from |require\()['\"](fs|path|url|process|net|os|util|child_process)['\"]" "$pkg_dir"/dist/index.js "$pkg_dir"/dist/index.cjs; then
  echo "pack-smoke: the build dropped the node: prefix of the imports above" >&2
  exit 1
fi
mkdir -p "$work/app"
cd "$work/app"
echo '{"name":"pack-smoke","private":true,"type":"module"}' > package.json
npm install --silent --no-audit --no-fund "$tarball" >/dev/null
cat > smoke.mjs <<'JS'
import { createFfiAdapter, detectRuntime } from '@tasker-systems/worker';
const adapter = createFfiAdapter();
if (!adapter.libraryPath.includes('node_modules/@tasker-systems/worker/native/')) throw new Error(`not the bundled library: ${adapter.libraryPath}`);
adapter.bootstrapWorker({ log_stderr: false, source: { kind: 'synthetic', count: 100 } });
let n = 0;
const deadline = Date.now() + 10_000;
while (n < 100 && Date.now() < deadline) {
  const e = adapter.pollStepEvents();
  if (e) { n++; adapter.completeStepEvent(e.event_id, JSON.stringify({ step_uuid: e.step_uuid, success: true, result: {}, status: 'completed' })); }
}
adapter.stopWorker();
adapter.close();
if (n !== 100) throw new Error(`only ${n} events`);
console.log(`pack-smoke: ${detectRuntime()} read 100 events through the bundled library`);
JS
cat > smoke.cjs <<'JS'
const { createFfiAdapter } = require('@tasker-systems/worker');
const a = createFfiAdapter();
a.close();
console.log(`pack-smoke: CommonJS require loads ${a.libraryPath.split('/node_modules/')[1]}`);
JS
env -u TASKER_LIBRARY_PATH node smoke.mjs
env -u TASKER_LIBRARY_PATH node smoke.cjs
env -u TASKER_LIBRARY_PATH "$pkg_dir/node_modules/.bin/bun" smoke.mjs
echo "{}" > deno.json # the nearest config: Deno must not adopt one above the temp dir
env -u TASKER_LIBRARY_PATH "$pkg_dir/node_modules/.bin/deno" run -A --config deno.json smoke.mjs
