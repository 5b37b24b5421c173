import { describe, expect, it } from 'vitest';
import { WASM_TYPE, WasmMatVec, type WasmDType } from '../../src/engine/kernels.js';
import type { Weight } from '../../src/engine/weights.js';
import { quantize, TYPE_INFO } from '../../src/formats/codecs/index.js';

// Rows are independent: a product split over worker threads is bit-identical to one thread's.
describe('WASM mat-vec on worker threads', () => {
  const ROWS = 101;
  const COLS = 1024;
  const values = Float32Array.from({ length: ROWS * COLS }, (_, i) => Math.sin(i * 0.61) * (1 + (i % 11)) * 0.03);
  const x = Float32Array.from({ length: COLS }, (_, i) => Math.cos(i * 0.17));
  for (const dtype of Object.keys(WASM_TYPE) as WasmDType[]) {
    it(`${dtype} ${ROWS}×${COLS}: 2 and 3 threads give exactly the 1-thread result`, () => {
      const bytes = quantize(dtype, values, {});
      const info = TYPE_INFO[dtype];
      const rowBytes = info.isWholeTensor === true ? 0 : (COLS / info.blockSize) * info.typeSize;
      const results = [1, 2, 3].map((threads) => {
        const w: Weight = {
          dtype,
          rows: ROWS,
          cols: COLS,
          isTransposed: false,
          storedRows: ROWS,
          storedCols: COLS,
          rowBytes,
          bytes: bytes.slice(),
        };
        const mv = new WasmMatVec(threads);
        mv.prepare(w);
        const out = new Float32Array(ROWS);
        mv.run(x, [{ w, out }]);
        mv.run(x, [{ w, out }]);
        expect(mv.parallelRuns).toBe(threads > 1 ? 2 : 0);
        return out;
      });
      expect(results[0]?.some((v) => v !== 0)).toBe(true);
      expect(Array.from(results[1] ?? [])).toEqual(Array.from(results[0] ?? []));
      expect(Array.from(results[2] ?? [])).toEqual(Array.from(results[0] ?? []));
    });
  }
});
