#!/usr/bin/env bash
# Packs the main package and this host's platform package (@tasker-systems/worker-<platform>, generated from
# the release build of libtasker_worker), installs both tarballs into an empty project, and runs a store-fed
# worker on Node (ESM; CJS loads), Bun and Deno with no TASKER_LIBRARY_PATH: the library must come from the
# platform package and complete every step of a fresh SQLite store.
set -euo pipefail
cd "$(dirname "$0")/.."
pkg_dir="$PWD"
cli="${TASKER_RING_BIN:-$pkg_dir/../target/release/tasker-ring}"
[ -x "$cli" ] || { echo "pack-smoke: the tasker-ring CLI is not built at $cli: cargo build --release -p tasker-ring-cli" >&2; exit 1; }
work="$(mktemp -d "$pkg_dir/../target/pack-smoke.XXXXXX")"  # not under /tmp: Deno reads every deno.json above its cwd
trap 'rm -rf "$work"' EXIT

platform_tarball="$(npm run --silent pack:platform -- --pack "$work" | tail -1)"
npm pack --silent --pack-destination "$work" >/dev/null
main_tarball="$work/tasker-systems-worker-$(node -p 'require("./package.json").version').tgz"
platform_id="$(basename "$platform_tarball" | sed -E 's/^tasker-systems-worker-(.*)-[0-9]+\.[0-9]+\.[0-9]+.*\.tgz$/\1/')"

# Each tarball stays small (issue 17: <= 8 MB each): the library is stripped and only in the platform package.
for tarball in "$main_tarball" "$platform_tarball"; do
  size="$(stat -c %s "$tarball")"
  echo "pack-smoke: $(basename "$tarball") is $((size / 1024)) KiB"
  [ "$size" -le $((8 * 1000 * 1000)) ] || { echo "pack-smoke: $(basename "$tarball") is $size bytes, over 8 MB" >&2; exit 1; }
done
# The listings are read whole first: `grep -q` exiting early would SIGPIPE tar and fail the pipeline.
main_listing="$(tar -tzf "$main_tarball")"
platform_listing="$(tar -tzf "$platform_tarball")"
if grep -n 'libtasker_worker' <<<"$main_listing"; then echo "pack-smoke: the main package carries a native library" >&2; exit 1; fi
grep -qx 'package/libtasker_worker.so' <<<"$platform_listing" || { echo "pack-smoke: the platform package lacks the library" >&2; exit 1; }
# The platform package declares where it installs; the main one depends on it, optionally, at its own version.
tar -xzOf "$platform_tarball" package/package.json | node -e '
  const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const want = { os: ["linux"], cpu: ["x64"], libc: ["glibc"] };
  for (const k of Object.keys(want)) if (JSON.stringify(m[k]) !== JSON.stringify(want[k])) throw new Error(`platform package ${k}: ${JSON.stringify(m[k])}`);'
tar -xzOf "$main_tarball" package/package.json | node -e '
  const m = JSON.parse(require("fs").readFileSync(0, "utf8"));
  const dep = m.optionalDependencies?.["@tasker-systems/worker-'"$platform_id"'"];
  if (dep !== m.version) throw new Error(`optionalDependencies lacks the platform package at ${m.version}: ${JSON.stringify(m.optionalDependencies)}`);'
grep -q '"@tasker-systems/worker-' package.json && { echo "pack-smoke: postpack did not restore package.json" >&2; exit 1; }
# The build keeps `node:`-prefixed imports as written (tsup's removeNodeProtocol: false).
if grep -nE "(from |require\()['\"](fs|path|url|process|net|os|util|child_process)['\"]" "$pkg_dir"/dist/*.js "$pkg_dir"/dist/*.cjs; then
  echo "pack-smoke: the build dropped the node: prefix of the imports above" >&2
  exit 1
fi

mkdir -p "$work/app"
cd "$work/app"
echo '{"name":"pack-smoke","private":true,"type":"module"}' > package.json
npm install --silent --no-audit --no-fund "$main_tarball" "$platform_tarball" >/dev/null
cat > worker.mjs <<'JS'
// A store worker of the linear template (four steps in a chain), as the README's quick start, until `want` steps succeeded.
import { createFfiAdapter, detectRuntime, TaskerWorker } from '@tasker-systems/worker';
const want = Number(process.argv[2] ?? globalThis.Deno?.args[0]);
const adapter = createFfiAdapter();
if (!/node_modules\/@tasker-systems\/worker-[a-z0-9-]+\/libtasker_worker/.test(adapter.libraryPath)) throw new Error(`not the platform package's library: ${adapter.libraryPath}`);
const worker = new TaskerWorker({ adapter, concurrency: 10, handleSignals: false, bootstrap: { namespace: 'default', database_url: 'tasker.db' } });
worker.register('LinearWorkflow.StepHandlers.LinearStep1Handler', ({ task }) => ({ value: task.context.even_number ** 2 }));
for (const [step, parent] of [[2, 'linear_step_1'], [3, 'linear_step_2'], [4, 'linear_step_3']]) {
  worker.register(`LinearWorkflow.StepHandlers.LinearStep${step}Handler`, ({ dependencyResults }) => ({ value: dependencyResults.results[parent].result.value ** 2 }));
}
await worker.start();
const deadline = Date.now() + 30_000;
while (worker.stats().succeeded < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
await worker.stop();
const { succeeded } = worker.stats();
if (succeeded !== want) throw new Error(`${succeeded} of ${want} steps succeeded`);
console.log(`pack-smoke: ${detectRuntime()} completed ${want} store steps through ${adapter.libraryPath.split('/node_modules/')[1]}`);
JS
cat > smoke.cjs <<'JS'
const { createFfiAdapter, FfiError } = require('@tasker-systems/worker');
const { createNapiModule, WorkerNotInitializedError } = require('@tasker-systems/worker/tasker-core');
const a = createFfiAdapter();
a.close();
// One copy of the error classes across the two entry points (shared chunks in the CJS build too).
if (!(new WorkerNotInitializedError() instanceof FfiError)) throw new Error('tasker-core errors are not FfiErrors under require()');
if (typeof createNapiModule().getVersion() !== 'string') throw new Error('the tasker-core module has no version');
console.log(`pack-smoke: CommonJS require loads ${a.libraryPath.split('/node_modules/')[1]} and the tasker-core subpath`);
JS
echo "{}" > deno.json # the nearest config: Deno must not adopt one above the temp dir
# One fresh store per runtime: 5 linear tasks, 20 steps, every one complete afterwards.
run_store_worker() {
  rm -f tasker.db*
  "$cli" store enqueue --database-url tasker.db --count 5 >/dev/null
  env -u TASKER_LIBRARY_PATH -u TASKER_DATABASE_URL "$@" 20
  "$cli" store status --json --database-url tasker.db | node -e '
    const { steps } = JSON.parse(require("fs").readFileSync(0, "utf8"));
    if (steps.complete !== 20) throw new Error(`store: ${JSON.stringify(steps)}`);'
}
run_store_worker node worker.mjs
env -u TASKER_LIBRARY_PATH node smoke.cjs
run_store_worker "$pkg_dir/node_modules/.bin/bun" worker.mjs
run_store_worker "$pkg_dir/node_modules/.bin/deno" run -A --config deno.json worker.mjs
