// promtool, from Debian's `prometheus` package (.ci/run installs it), when it is on PATH.
import { execFileSync } from 'node:child_process';

export const promtool: string | undefined = (() => {
  try {
    execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    return 'promtool';
  } catch {
    return undefined;
  }
})();
