// The metrics live in src/metrics.ts (one module for the checks and the CLI); re-exported for the checks.
export * from '../metrics.js';
