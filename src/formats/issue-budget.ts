import type { FileCode, FileIssue } from './types.js';

/**
 * Per-tensor issues a reader keeps for one file. Past a thousand a report says nothing more, and each kept
 * issue costs ~200 bytes of heap: a GGUF tensor info can be 24 bytes and raise two, so a file of a million
 * duplicate or misplaced tensor infos (23 MB) kept 2 million issues (~400 MB of heap, ~1 GB RSS).
 */
export const MAX_TENSOR_ISSUES = 1000;

/**
 * Collects per-tensor issues up to a limit, then counts the rest per code and reports them as one issue each.
 * Out-of-bounds issues (F-FILE-002 naming a tensor) are exempt: consumers rely on them to know what not to read.
 */
export class IssueBudget {
  private kept = 0;
  private readonly dropped = new Map<FileCode, number>();

  constructor(
    private readonly issues: FileIssue[],
    private readonly limit = MAX_TENSOR_ISSUES,
  ) {}

  push(i: FileIssue): void {
    // A tensor's F-FILE-002 is always kept: the checks skip decoding exactly the tensors it names.
    if (i.code === 'F-FILE-002' && i.tensor !== undefined) {
      this.issues.push(i);
    } else if (this.kept < this.limit) {
      this.kept++;
      this.issues.push(i);
    } else {
      this.dropped.set(i.code, (this.dropped.get(i.code) ?? 0) + 1);
    }
  }

  /** One summary issue per code that had issues dropped (so the set of codes a file raises never changes). */
  close(): void {
    for (const [code, n] of this.dropped) {
      this.issues.push({
        code,
        fatal: false,
        message: `${n} more ${code} issue(s) on tensors not listed (a file keeps its first ${this.limit} per-tensor issues)`,
        evidence: { dropped: n, limit: this.limit },
      });
    }
    this.dropped.clear();
  }
}
