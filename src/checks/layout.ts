import { statusOf } from './codes.js';
import type { ModelFile, TensorEntry } from '../formats/types.js';
import type { CheckResult, Verdict } from './codes.js';
import type { ExpectedTensor } from './manifest.js';

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);
const fmt = (shape: number[]): string => `[${shape.join(', ')}]`;

/** Bytes a tensor may reserve beyond what it needs: GGUF pads each tensor to its alignment. */
function slackBytes(file: ModelFile): number {
  if (file.format !== 'gguf') return 1;
  const a = file.metadata.get('general.alignment');
  return typeof a === 'number' && a > 0 ? a : 32;
}

/** L2: name bijection (-006), element count and shape (-001, -002), bytes vs dtype × shape (-004). */
export function checkLayout(file: ModelFile, expected: ExpectedTensor[]): CheckResult {
  const verdicts: Verdict[] = [];
  const byName = new Map<string, TensorEntry>(file.tensors.map((t) => [t.name, t]));
  const expectedNames = new Set(expected.map((e) => e.name));
  for (const e of expected) {
    const t = byName.get(e.name);
    if (!t) {
      if (!e.optional) {
        verdicts.push({
          code: 'F-LAYOUT-CONTRACT-006',
          status: 'fail',
          tensor: e.name,
          message: `Missing tensor: source '${e.hfName}' has no counterpart`,
          evidence: { expected: e.name, got: null, source: e.hfName },
        });
      }
      continue;
    }
    const got = numel(t.shape);
    const want = numel(e.shape);
    if (got !== want) {
      verdicts.push({
        code: 'F-LAYOUT-CONTRACT-001',
        status: 'fail',
        tensor: e.name,
        message: `Shape mismatch: got ${got}, expected ${want}`,
        evidence: {
          expected: want,
          got,
          gotElements: got,
          expectedElements: want,
          gotShape: t.shape,
          expectedShape: e.shape,
          dtype: t.dtype,
        },
      });
    } else if (fmt(t.shape) !== fmt(e.shape)) {
      const transposed = t.shape.length === 2 && e.shape.length === 2 && t.shape[0] === e.shape[1] && t.shape[1] === e.shape[0];
      verdicts.push(
        transposed
          ? {
              code: 'F-LAYOUT-CONTRACT-002',
              status: 'fail',
              tensor: e.name,
              message: `Transposed: got ${fmt(t.shape)}, expected ${fmt(e.shape)}`,
              evidence: { expected: e.shape, got: t.shape, gotShape: t.shape, expectedShape: e.shape },
            }
          : {
              code: 'F-LAYOUT-CONTRACT-001',
              status: 'fail',
              tensor: e.name,
              message: `Shape mismatch: got ${fmt(t.shape)}, expected ${fmt(e.shape)}`,
              evidence: { expected: e.shape, got: t.shape, gotShape: t.shape, expectedShape: e.shape },
            },
      );
    }
    const slack = slackBytes(file);
    if (t.spanBytes < t.byteLength || t.spanBytes - t.byteLength >= slack) {
      verdicts.push({
        code: 'F-LAYOUT-CONTRACT-004',
        status: 'fail',
        tensor: e.name,
        message: `Byte size mismatch: file holds ${t.spanBytes} bytes, ${t.dtype} × ${fmt(t.shape)} requires ${t.byteLength}`,
        evidence: {
          expected: t.byteLength,
          got: t.spanBytes,
          spanBytes: t.spanBytes,
          requiredBytes: t.byteLength,
          dtype: t.dtype,
          shape: t.shape,
          paddingAllowed: slack - 1,
        },
      });
    }
  }
  for (const t of file.tensors) {
    if (!expectedNames.has(t.name)) {
      verdicts.push({
        code: 'F-LAYOUT-CONTRACT-006',
        status: 'fail',
        tensor: t.name,
        message: `Unexpected tensor: no source tensor maps to it`,
        evidence: { expected: null, got: t.name, shape: t.shape, dtype: t.dtype },
      });
    }
  }
  return { suite: 'layout', status: statusOf(verdicts), verdicts };
}
