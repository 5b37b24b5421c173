/**
 * A run's journal, for crash-safe, resumable runs: the plan of the run (what decides its cells and claims) and one file
 * per finished cell, each written atomically (temp + rename) the moment the cell finishes. After a crash or `kill -9`,
 * `tmgt check --resume` with the same plan reuses the finished cells and runs only the others; a run that completes
 * removes its journal.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CellResult } from '../contracts/results.js';
import { UsageError } from '../errors.js';

const DIR = '.tmgt-run';

function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

export class Journal {
  private readonly dir: string;

  /** Open the journal of `reportDir` for a run of `plan`; with `resume`, the finished cells of an earlier run of the same plan are kept. */
  constructor(reportDir: string, plan: unknown, resume: boolean) {
    this.dir = join(reportDir, DIR);
    const planText = JSON.stringify(plan);
    const planPath = join(this.dir, 'plan.json');
    if (resume) {
      if (!existsSync(planPath)) throw new UsageError(`--resume: no unfinished run in ${reportDir} (nothing to resume)`);
      if (readFileSync(planPath, 'utf8') !== planText)
        throw new UsageError(`--resume: the unfinished run in ${reportDir} had other flags; run it with the same ones`);
      return;
    }
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    writeAtomic(planPath, planText);
  }

  /** The cells an earlier run of this plan finished, by index. */
  finished(): Map<number, CellResult> {
    const out = new Map<number, CellResult>();
    for (const f of readdirSync(this.dir)) {
      const m = /^cell-(\d+)\.json$/.exec(f);
      if (m === null) continue;
      try {
        out.set(Number(m[1]), JSON.parse(readFileSync(join(this.dir, f), 'utf8')) as CellResult); // written by record() below
      } catch {
        // a cell file cut short cannot exist (atomic rename); anything unreadable is simply run again
      }
    }
    return out;
  }

  record(index: number, cell: CellResult): void {
    writeAtomic(join(this.dir, `cell-${index}.json`), JSON.stringify(cell));
  }

  /** The run completed: nothing is left to resume. */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
