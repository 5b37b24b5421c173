#!/usr/bin/env node
// Entry point. An installed package runs the compiled library (dist/, built by `npm run build` at pack time): no
// TypeScript loader at a user's run time. A source checkout runs src/ through tsx, even when a dist/ from an earlier
// `npm pack` is lying around, so an edit is never shadowed by stale compiled code (TMGT_DIST=1 forces dist/).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/cli/main.js', import.meta.url);
const useDist = existsSync(compiled) && (!existsSync(source) || process.env.TMGT_DIST === '1');
let main;
try {
  if (useDist) {
    ({ main } = await import(compiled.href));
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    ({ main } = await import(source.href));
  }
} catch (e) {
  // The harness could not even load (a missing dependency, a broken install): exit 2, never Node's 1 (a failed check).
  process.stderr.write(`tmgt: internal error: cannot load the CLI: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(2);
}
process.exitCode = await main(process.argv.slice(2));
