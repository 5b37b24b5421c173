/**
 * Progress of a matrix run on stderr. On a terminal (and not in CI) one live line: cells done/total, the cells
 * running, elapsed time and an estimate of what is left. Otherwise one plain line per cell as it starts and as it
 * ends, which logs read well (with `--jobs`, cells end out of order: each end line names its cell).
 */
import { performance } from 'node:perf_hooks';
import type { CellResult } from '../contracts/results.js';
import { terminalSafe } from '../report/parity.js';

const seconds = (ms: number): string =>
  ms < 60_000 ? `${(ms / 1000).toFixed(0)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

export class Progress {
  private readonly live = process.stderr.isTTY === true && process.env['CI'] === undefined;
  private readonly started = performance.now();
  private readonly running = new Map<number, string>();
  private finished = 0;
  private finishedNow = 0;

  constructor(
    private readonly total: number,
    private readonly jobs = 1,
  ) {}

  /** A cell the journal already holds (`--resume`). */
  finishedEarlier(index: number, label: string): void {
    this.finished++;
    if (!this.live) process.stderr.write(`[${index + 1}/${this.total}] ${terminalSafe(label)} — finished earlier\n`);
  }

  start(index: number, label: string): void {
    this.running.set(index, terminalSafe(label));
    if (!this.live) process.stderr.write(`[${index + 1}/${this.total}] ${terminalSafe(label)} …\n`);
    else this.draw();
  }

  done(index: number, r: CellResult): void {
    const label = this.running.get(index) ?? '';
    this.running.delete(index);
    this.finished++;
    this.finishedNow++;
    const line =
      r.status === 'skipped'
        ? `skipped: ${terminalSafe(r.reason)}`
        : `${r.checks.filter((c) => c.status !== 'fail').length}/${r.checks.length} checks passing in ${(r.durationMs / 1000).toFixed(1)} s`;
    if (this.live) {
      process.stderr.write(`\r\x1b[2K[${index + 1}/${this.total}] ${label}: ${line}\n`);
      if (this.running.size > 0) this.draw();
    } else process.stderr.write(this.jobs > 1 ? `      [${index + 1}/${this.total}] ${line}\n` : `      ${line}\n`);
  }

  end(): void {
    if (this.live) process.stderr.write('\r\x1b[2K');
  }

  private draw(): void {
    const elapsed = performance.now() - this.started;
    const left = this.total - this.finished;
    const eta = this.finishedNow === 0 ? '' : `, ~${seconds((elapsed / this.finishedNow) * left)} left`;
    const names = [...this.running.values()];
    const now = names.length > 1 ? `${names.length} cells running: ${names[0] ?? ''}, …` : (names[0] ?? '');
    process.stderr.write(`\r\x1b[2K[${this.finished}/${this.total} done] ${now} (${seconds(elapsed)} elapsed${eta})`);
  }
}
