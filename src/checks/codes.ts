// The catalogue moved to src/contracts/verdicts.ts (shared by every layer); re-exported here for the checks.
export { CODES, SUITES, type FileCode, type SuiteName, type Verdict, type VerdictCode } from '../contracts/verdicts.js';
export { statusOf, type CheckResult, type CheckStatus } from '../contracts/results.js';
