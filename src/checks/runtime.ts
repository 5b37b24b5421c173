import type { CheckResult } from './codes.js';

/** What the harness knows of a converter that failed (a `ConvertResult` with status 'failed'). */
export interface ConverterFailure {
  reason: string;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  log: string;
}

/** F-RUNTIME-001: the converter exited non-zero, was killed, timed out, or wrote nothing. */
export function converterFailed(converter: string, f: ConverterFailure): CheckResult {
  return {
    suite: 'file',
    status: 'fail',
    verdicts: [{ code: 'F-RUNTIME-001', status: 'fail', message: `converter '${converter}' ${f.reason}`, evidence: { exitCode: f.exitCode, signal: f.signal, timedOut: f.timedOut, logTail: f.log.slice(-1000) } }],
  };
}

/** F-RUNTIME-002: the engine could not load or run the artifact, so a logits claim cannot hold. */
export function engineFailed(prompt: string, engine: string, message: string): CheckResult {
  return { suite: 'logits', prompt, status: 'fail', verdicts: [{ code: 'F-RUNTIME-002', status: 'fail', message: `engine '${engine}' could not run the artifact: ${message}`, evidence: { engine, error: message } }] };
}
