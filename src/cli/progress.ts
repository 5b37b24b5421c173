/**
 * Progress of a matrix run on stderr. On a terminal (and not in CI) one live line: cells done/total, the current cell,
 * elapsed time and an estimate of what is left. Otherwise one plain line per cell, which logs read well.
 */
import { performance } from 'node:perf_hooks';
import type { CellResult } from '../contracts/results.js';
import { terminalSafe } from '../report/parity.js';

const seconds = (ms: number): string =>
  ms < 60_000 ? `${(ms / 1000).toFixed(0)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;

export class Progress {
  private readonly live = process.stderr.isTTY === true && process.env['CI'] === undefined;
  private readonly started = performance.now();
  private index = 0;
  private label = '';

  constructor(private readonly total: number) {}

  start(index: number, label: string): void {
    this.index = index;
    this.label = terminalSafe(label);
    if (!this.live) process.stderr.write(`[${index + 1}/${this.total}] ${this.label} …\n`);
    else this.draw();
  }

  done(r: CellResult): void {
    const line =
      r.status === 'skipped'
        ? `skipped: ${terminalSafe(r.reason)}`
        : `${r.checks.filter((c) => c.status !== 'fail').length}/${r.checks.length} checks passing in ${(r.durationMs / 1000).toFixed(1)} s`;
    if (this.live) process.stderr.write(`\r\x1b[2K[${this.index + 1}/${this.total}] ${this.label}: ${line}\n`);
    else process.stderr.write(`      ${line}\n`);
  }

  end(): void {
    if (this.live) process.stderr.write('\r\x1b[2K');
  }

  private draw(): void {
    const elapsed = performance.now() - this.started;
    const eta = this.index === 0 ? '' : `, ~${seconds((elapsed / this.index) * (this.total - this.index))} left`;
    process.stderr.write(`\r\x1b[2K[${this.index + 1}/${this.total}] ${this.label} (${seconds(elapsed)} elapsed${eta})`);
  }
}
