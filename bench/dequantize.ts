/**
 * Dequantize throughput of the WASM kernels per stored type: a 256 × 4096 tensor (1 Mi elements, quantized by the
 * project's own codecs) decoded row by row into f32, timed with tinybench.
 */
import { Bench } from 'tinybench';
import { WASM_TYPE, WasmMatVec, type WasmDType } from '../src/engine/kernels.js';
import type { Weight } from '../src/engine/weights.js';
import { quantize, TYPE_INFO } from '../src/formats/codecs/index.js';

/** One type's figures: stored bytes read per second and f32 bytes written per second. */
export interface DequantizeResult {
  type: WasmDType;
  storedGBps: number;
  f32GBps: number;
}

const ROWS = 256;
const COLS = 4096;

export async function dequantizeThroughput(): Promise<DequantizeResult[]> {
  const values = Float32Array.from({ length: ROWS * COLS }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 13)) * 0.05);
  const out: DequantizeResult[] = [];
  const bench = new Bench({ time: 300, warmupTime: 50 });
  const sizes = new Map<string, number>();
  for (const type of Object.keys(WASM_TYPE) as WasmDType[]) {
    const bytes = quantize(type, values, {});
    const info = TYPE_INFO[type];
    const rowBytes = info.isWholeTensor === true ? 0 : (COLS / info.blockSize) * info.typeSize;
    const w: Weight = { dtype: type, rows: ROWS, cols: COLS, isTransposed: false, storedRows: ROWS, storedCols: COLS, rowBytes, bytes };
    const mv = new WasmMatVec();
    mv.prepare(w);
    const p = mv.placement(w);
    if (p === undefined) throw new Error(`${type} was not placed`);
    const y = mv.arena.alloc(COLS * 4);
    const k = mv.arena.k;
    sizes.set(type, bytes.length);
    bench.add(type, () => {
      for (let r = 0; r < ROWS; r++) k.dq_row(p.type, p.ptr, rowBytes, r, COLS, y);
    });
  }
  for (const t of await bench.run()) {
    const r = t.result;
    if (r.state !== 'completed') throw new Error(`${t.name}: ${r.state}`);
    const seconds = r.latency.mean / 1000;
    // Task names are the WASM_TYPE keys added above.
    out.push({
      type: t.name as WasmDType,
      storedGBps: (sizes.get(t.name) ?? 0) / seconds / 1e9,
      f32GBps: (ROWS * COLS * 4) / seconds / 1e9,
    });
  }
  return out;
}
