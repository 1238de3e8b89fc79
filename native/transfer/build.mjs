// Builds the armature-transfer N-API addon with node-gyp against the Node.js headers already
// on this machine; it never downloads anything.
//
// It never fails the build either: without a compiler, Python or headers it prints a warning
// and exits 0, and libs/transfer uses its pure-TypeScript fallback. On success it prints one
// line naming build/Release/armature_transfer.node. A second run only re-runs make
// (`node-gyp build`); it reconfigures (`node-gyp rebuild`) when the Node.js version, the
// headers or binding.gyp changed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const addonDir = dirname(fileURLToPath(import.meta.url));
const buildDir = join(addonDir, 'build');
const addonPath = join(buildDir, 'Release', 'armature_transfer.node');
const stampPath = join(buildDir, 'armature-configure.json');
const bindingGyp = join(addonDir, 'binding.gyp');

/** First directory whose include/node/node_api.h exists, as node-gyp's --nodedir. */
function findNodeDir() {
  const candidates = [process.env.npm_config_nodedir, '/usr', dirname(dirname(process.execPath))];
  return candidates.find((dir) => dir && existsSync(join(dir, 'include', 'node', 'node_api.h')));
}

/** node-gyp's CLI script from the root devDependency, or undefined. */
function findNodeGyp() {
  try {
    return createRequire(join(addonDir, '..', '..', 'package.json')).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return undefined;
  }
}

/** What the configure step depends on; a change means `rebuild` instead of `build`. */
function configureStamp(nodeDir) {
  return JSON.stringify({
    node: process.version,
    arch: process.arch,
    nodeDir,
    bindingGypMtimeMs: statSync(bindingGyp).mtimeMs,
  });
}

function isConfigured(stamp) {
  if (!existsSync(join(buildDir, 'Makefile')) || !existsSync(join(buildDir, 'config.gypi'))) return false;
  try {
    return readFileSync(stampPath, 'utf8') === stamp;
  } catch {
    return false;
  }
}

function warnFallback(reason, details = '') {
  // A stale addon from an earlier build must not be loaded in place of the one that failed.
  rmSync(addonPath, { force: true });
  console.warn(
    `native/transfer: WARNING: the armature-transfer addon was not built (${reason}); ` +
      'libs/transfer will use its pure-TypeScript fallback.',
  );
  if (details) console.warn(details);
}

function main() {
  const nodeDir = findNodeDir();
  if (!nodeDir) return warnFallback('no Node.js headers: include/node/node_api.h not found; set npm_config_nodedir');
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return warnFallback('node-gyp is not installed; run npm install at the repository root');

  const stamp = configureStamp(nodeDir);
  const command = isConfigured(stamp) ? 'build' : 'rebuild';
  const started = performance.now();
  const result = spawnSync(process.execPath, [nodeGyp, command, `--nodedir=${nodeDir}`, '--release', '--jobs=2'], {
    cwd: addonDir,
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodeDir },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 5 * 60 * 1000,
  });
  if (result.status !== 0 || !existsSync(addonPath)) {
    rmSync(stampPath, { force: true });
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trimEnd().split('\n').slice(-25).join('\n');
    const reason = result.error
      ? `node-gyp ${command}: ${result.error.message}`
      : `node-gyp ${command} exited with ${result.status ?? result.signal}`;
    return warnFallback(reason, output);
  }
  if (command === 'rebuild') writeFileSync(stampPath, stamp);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`native/transfer: built ${addonPath} (node-gyp ${command}, ${seconds} s)`);
}

try {
  main();
} catch (error) {
  warnFallback(`unexpected error: ${error instanceof Error ? error.message : String(error)}`);
}
process.exitCode = 0;
