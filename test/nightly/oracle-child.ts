/**
 * Runs one streamed oracle build (runOracleFromDir) in a process of its own, so its peak RSS is the oracle's alone:
 * `node --import tsx test/nightly/oracle-child.ts <checkpoint dir> <prompt ids JSON> <max new tokens> <logits out>`.
 * Writes the record's f32 logits to <logits out> and prints one JSON line: greedy ids, run stats, peak RSS (KiB).
 */
import { writeFileSync } from 'node:fs';
import { runOracleFromDir, type OracleRunStats } from '../../src/oracle/run.js';

const [dir, idsJson, maxNew, out] = process.argv.slice(2);
if (dir === undefined || idsJson === undefined || maxNew === undefined || out === undefined)
  throw new Error('usage: oracle-child.ts DIR IDS_JSON MAX_NEW LOGITS_OUT');
let stats: OracleRunStats | undefined;
const [record] = await runOracleFromDir(dir, [JSON.parse(idsJson) as number[]], {
  maxNewTokens: Number(maxNew),
  onStats: (s) => (stats = s),
});
if (record === undefined) throw new Error('no oracle record');
writeFileSync(out, new Uint8Array(record.logits.buffer, record.logits.byteOffset, record.logits.byteLength));
process.stdout.write(
  JSON.stringify({ ids: record.ids, greedyIds: record.greedyIds, stats, maxRssKiB: process.resourceUsage().maxRSS }) + '\n',
);
