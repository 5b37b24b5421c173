/**
 * The engine's matrix-vector products, two interchangeable implementations behind one interface:
 *
 * - `wasm` (the default): the WebAssembly SIMD kernels of src/engine/wasm/assembly/kernels.ts, computing from
 *   the stored blocks laid once into a model's own (shared) WebAssembly memory;
 * - `ts`: the plain TypeScript reference (weights.ts `matvec`), which the WASM path is tested against.
 *
 * Both compute the same values: each weight decodes to the same f32 (codecs in src/formats/codecs), and
 * block-quantized weights meet activations quantized to llama.cpp's `vec_dot_type` for them (activations.ts:
 * Q8_0 for Q8_0/Q4_0/Q5_0, Q8_1 for Q4_1/Q5_1, Q8_K for Q4_K/Q6_K) on both paths, with exact integer dots per
 * block; only the summation order of the float terms (f32 SIMD lanes vs f64) differs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorMessage, HarnessError } from '../errors.js';
import { fp16Table } from '../formats/codecs/f16.js';
import type { DType } from '../formats/types.js';
import { Q8_1_ACTIVATION_TYPES, Q8_ACTIVATION_TYPES, Q8K_ACTIVATION_TYPES } from './activations.js';
import { defaultThreads, kernelPool, type JobPart, type KernelPool, type ThreadedFn } from './threads.js';
import { matvec as tsMatvec, type Weight } from './weights.js';

/** Which matrix-vector implementation a model uses. */
export type KernelChoice = 'wasm' | 'ts';

/** Stored types the WASM kernels read, with the ids the AssemblyScript source uses. */
export const WASM_TYPE = {
  F32: 0,
  F16: 1,
  BF16: 2,
  Q8_0: 3,
  Q4_0: 4,
  Q4_1: 5,
  Q5_0: 6,
  Q5_1: 7,
  Q4_K: 8,
  Q6_K: 9,
  APR_Q8: 10,
  APR_Q4: 11,
} as const satisfies Partial<Record<DType, number>>;

export type WasmDType = keyof typeof WASM_TYPE;

/** Whether the WASM kernels read `dtype` (other types — F64, I8, … in a safetensors file — take the TS path). */
export function isWasmDType(dtype: DType): dtype is WasmDType {
  return Object.hasOwn(WASM_TYPE, dtype);
}

/** The WASM kernels could not be built or loaded: the harness cannot run its engine (exit 2). */
export class KernelLoadError extends HarnessError {
  override readonly name = 'KernelLoadError';
  constructor(message: string, cause?: unknown) {
    super('E-ENGINE-KERNELS', message, { cause });
  }
}

/** Where the built module lives; `make` builds it, and the first load builds it when it is missing. */
export const WASM_PATH = fileURLToPath(new URL('./wasm/build/kernels.wasm', import.meta.url));
const BUILD_SCRIPT = fileURLToPath(new URL('./wasm/build.mjs', import.meta.url));

/** The kernels' exports (see the AssemblyScript source for each contract). */
export interface KernelExports {
  heapBase(): number;
  init(table: number): void;
  mv_f32(w: number, stride: number, r0: number, r1: number, n: number, x: number, out: number): void;
  mv_f16(w: number, stride: number, r0: number, r1: number, n: number, x: number, out: number): void;
  mv_bf16(w: number, stride: number, r0: number, r1: number, n: number, x: number, out: number): void;
  mv_q8_0(w: number, stride: number, r0: number, r1: number, n: number, ap: number, ad: number, qs: number, xs: number, out: number): void;
  mv_q4_0(w: number, stride: number, r0: number, r1: number, n: number, ap: number, ad: number, qs: number, xs: number, out: number): void;
  mv_q4_1(w: number, stride: number, r0: number, r1: number, n: number, ap: number, ad: number, qs: number, xs: number, out: number): void;
  mv_q5_0(w: number, stride: number, r0: number, r1: number, n: number, ap: number, ad: number, qs: number, xs: number, out: number): void;
  mv_q5_1(w: number, stride: number, r0: number, r1: number, n: number, ap: number, ad: number, qs: number, xs: number, out: number): void;
  mv_q4_k(w: number, stride: number, r0: number, r1: number, n: number, kq: number, kp: number, kd: number, ks: number, out: number): void;
  mv_q6_k(w: number, stride: number, r0: number, r1: number, n: number, kq: number, kp: number, kd: number, ks: number, out: number): void;
  mv_apr_q8(base: number, r0: number, r1: number, n: number, x: number, out: number): void;
  mv_apr_q4(base: number, r0: number, r1: number, n: number, x: number, out: number): void;
  quant_q8(x: number, n: number, ap: number, ad: number, qs: number, xs: number): void;
  quant_q8k(x: number, n: number, aq: number, ap: number, ad: number, xs: number): void;
  dq_row(type: number, w: number, stride: number, r: number, n: number, y: number): void;
  mvt(type: number, w: number, stride: number, i0: number, i1: number, nOut: number, x: number, out: number, scratch: number): void;
}

/** The part of the WebAssembly JS API used here. */
interface WasmMemory {
  readonly buffer: ArrayBufferLike;
  grow(pages: number): number;
}
interface WasmModule {
  readonly kind: 'module';
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: { env: { memory: WasmMemory } }) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
// A cast because tsconfig's libs (ES2023 + @types/node 20) declare the WebAssembly namespace without its
// classes, which only lib.dom types; Node 20 has them all at run time.
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let compiled: WasmModule | undefined;

/** The compiled kernel module (built from source first if the .wasm is missing), compiled once per process. */
export function kernelModule(): WasmModule {
  if (compiled !== undefined) return compiled;
  if (!existsSync(WASM_PATH)) {
    try {
      execFileSync(process.execPath, [BUILD_SCRIPT], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new KernelLoadError(`building the WASM kernels (${BUILD_SCRIPT}) failed: ${errorMessage(e)}`, e);
    }
  }
  try {
    compiled = new wasm.Module(readFileSync(WASM_PATH));
  } catch (e) {
    throw new KernelLoadError(`${WASM_PATH} is not a loadable module (rebuild it: make wasm): ${errorMessage(e)}`, e);
  }
  return compiled;
}

const PAGE_BYTES = 65536;
/** wasm32's whole address space, 4 GiB: the most weights one model can hold. */
const MAX_PAGES = 65536;
const ALIGN = 16;

/**
 * One model's linear memory: the kernels' instance, a bump allocator (a model's weights live as long as
 * the model; the memory is freed with it) and the fp16 table the kernels decode scales with.
 * Shared memory: views never detach when it grows, and worker threads can instantiate the same kernels on it.
 */
export class KernelArena {
  readonly memory: WasmMemory;
  readonly k: KernelExports;
  private top: number;
  /** Where the fp16 → f32 table sits (every instance on this memory must be `init`ed with it). */
  readonly fp16Table: number;

  constructor() {
    this.memory = new wasm.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const instance = new wasm.Instance(kernelModule(), { env: { memory: this.memory } });
    // The instance's exports are exactly the kernels the AssemblyScript source declares (KernelExports).
    this.k = instance.exports as unknown as KernelExports;
    this.top = align(this.k.heapBase());
    const table = this.alloc(65536 * 4);
    this.f32(table, 65536).set(fp16Table());
    this.k.init(table);
    this.fp16Table = table;
  }

  /** `bytes` fresh bytes, 16-byte aligned, growing the memory as needed. */
  alloc(bytes: number): number {
    const at = this.top;
    const end = align(at + Math.max(bytes, 0));
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const pages = Math.ceil((end - have) / PAGE_BYTES);
      if (have / PAGE_BYTES + pages > MAX_PAGES) {
        throw new KernelLoadError(`the model needs more than wasm32's 4 GiB of linear memory (${end} bytes)`);
      }
      this.memory.grow(pages);
    }
    this.top = end;
    return at;
  }

  u8(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, n);
  }
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
  i16(ptr: number, n: number): Int16Array {
    return new Int16Array(this.memory.buffer, ptr, n);
  }
  i32(ptr: number, n: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, n);
  }

  /** Bytes in use (weights, scratch, table). */
  get usedBytes(): number {
    return this.top;
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

/** One product of a batch that shares its input: out = W·x (+ bias). */
export interface MatVecJob {
  w: Weight;
  out: Float32Array;
  bias?: Float32Array | undefined;
}

/** The matrix-vector products a model runs. */
export interface MatVec {
  readonly kind: KernelChoice;
  /** Make `w` ready for this implementation (WASM: lay its bytes into the arena, once); returns it. */
  prepare(w: Weight): Weight;
  /** Every job's product with the same input x. */
  run(x: Float32Array, jobs: readonly MatVecJob[]): void;
}

/** The plain TypeScript reference. */
export class TsMatVec implements MatVec {
  readonly kind = 'ts';
  prepare(w: Weight): Weight {
    return w;
  }
  run(x: Float32Array, jobs: readonly MatVecJob[]): void {
    for (const j of jobs) tsMatvec(j.w, x, j.out, j.bias);
  }
}

/** A weight's place in the arena. */
export interface Placed {
  ptr: number;
  type: number;
}

/** A kernel call over rows [0, rows): its function, arguments, and where r0 (then r1) sits in them. */
interface KernelCall {
  fn: ThreadedFn;
  args: number[];
  r0At: number;
}

/**
 * Where one input's quantized activations sit in the arena (pointers), for the integer-dot kernels. Codes are
 * widened to i16; `ap`/`kp` hold them permuted — within every 16 elements the 8 even-indexed first, then the 8
 * odd-indexed — the order in which the kernels unpack 16 bytes of weight codes as i16 lanes.
 */
interface QuantizedInput {
  /** Q8_0/Q8_1: permuted codes, fp16-rounded d per 32, Σq per 32 (i32), Q8_1's s per 32. */
  q8?: { ap: number; ad: number; qs: number; xs: number };
  /** Q8_K: codes in element order (Q6_K) and permuted (Q4_K), f32 d per 256, Σq per 32 (i16; bsums in pairs). */
  q8k?: { kq: number; kp: number; kd: number; ks: number };
}

/** Fewest weights (rows × cols) a product needs before it is split over threads: below, a wake-up costs more than it saves. */
const PARALLEL_MIN_ELEMENTS = 1 << 16;

const collected = new FinalizationRegistry<() => void>((release) => release());

/** The WASM SIMD kernels over weights laid into one arena, on `threads` threads (the main one + a worker pool). */
export class WasmMatVec implements MatVec {
  readonly kind = 'wasm';
  readonly arena = new KernelArena();
  private readonly placed = new Map<Weight, Placed>();
  private x = { ptr: 0, n: 0 };
  private out = { ptr: 0, n: 0 };
  private scratch = { ptr: 0, n: 0 };
  private ap = { ptr: 0, n: 0 };
  private ad = { ptr: 0, n: 0 };
  private qs = { ptr: 0, n: 0 };
  private xs = { ptr: 0, n: 0 };
  private kq = { ptr: 0, n: 0 };
  private kp = { ptr: 0, n: 0 };
  private kd = { ptr: 0, n: 0 };
  private ks = { ptr: 0, n: 0 };
  private pool: { pool: KernelPool; arena: number } | undefined;
  /** Products split over threads so far (tests check that the threaded path really ran). */
  parallelRuns = 0;

  constructor(readonly threads = 1) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`threads must be a positive integer, got ${threads}`);
  }

  prepare(w: Weight): Weight {
    if (this.placed.has(w) || !isWasmDType(w.dtype)) return w;
    const ptr = this.arena.alloc(w.bytes.length);
    const view = this.arena.u8(ptr, w.bytes.length);
    view.set(w.bytes);
    // From here the weight's bytes are the arena's: the file's copy is dropped (one copy of the model in memory),
    // and the TS helpers (embedding rows, storedRow) read the same bytes the kernels do.
    w.bytes = view;
    this.placed.set(w, { ptr, type: WASM_TYPE[w.dtype] });
    return w;
  }

  /** A scratch region of at least n elements of `bytesPer` bytes, reallocated (growing) when too small. */
  private ensure(slot: { ptr: number; n: number }, n: number, bytesPer: number): number {
    if (slot.n < n) {
      slot.ptr = this.arena.alloc(n * bytesPer);
      slot.n = n;
    }
    return slot.ptr;
  }

  run(x: Float32Array, jobs: readonly MatVecJob[]): void {
    const a = this.arena;
    let xPtr = -1;
    // Each input is quantized at most once per type family, however many products share it.
    const quantized: QuantizedInput = {};
    for (const job of jobs) {
      const { w, out, bias } = job;
      const p = this.placed.get(w);
      if (p === undefined) {
        tsMatvec(w, x, out, bias);
        continue;
      }
      if (xPtr < 0) {
        xPtr = this.ensure(this.x, x.length, 4);
        a.f32(xPtr, x.length).set(x);
      }
      const outPtr = this.ensure(this.out, w.rows, 4);
      if (w.isTransposed) {
        // Conv1D [in, out] (HF GPT-2 layout only): one thread; splitting would need an output per thread.
        const scratch = this.ensure(this.scratch, w.storedCols, 4);
        a.k.mvt(p.type, p.ptr, w.rowBytes, 0, w.storedRows, w.storedCols, xPtr, outPtr, scratch);
      } else {
        this.dispatch(this.rowCall(p, w, xPtr, outPtr, quantized), w);
      }
      out.set(a.f32(outPtr, w.rows));
      if (bias) for (let r = 0; r < w.rows; r++) out[r] = (out[r] as number) + (bias[r] as number);
    }
  }

  private callLocal(c: { fn: ThreadedFn; args: readonly number[] }): void {
    // Every ThreadedFn is a kernel export taking numbers; the tuple types differ per kernel, hence the cast.
    (this.arena.k[c.fn] as unknown as (...a: number[]) => void)(...c.args);
  }

  /** Run a call over all rows: on this thread, or split into contiguous row ranges over the pool. */
  private dispatch(call: KernelCall, w: Weight): void {
    const parts = this.threads > 1 && w.rows * w.cols >= PARALLEL_MIN_ELEMENTS ? Math.min(this.threads, w.rows) : 1;
    if (parts === 1) return this.callLocal(call);
    if (this.pool === undefined) {
      const pool = kernelPool(kernelModule(), this.threads - 1);
      const arena = pool.attach(this.arena.memory, this.arena.fp16Table);
      this.pool = { pool, arena };
      collected.register(this, () => pool.detach(arena));
    }
    const jobParts: JobPart[] = [];
    for (let t = 0; t < parts; t++) {
      const args = [...call.args];
      args[call.r0At] = Math.floor((w.rows * t) / parts);
      args[call.r0At + 1] = Math.floor((w.rows * (t + 1)) / parts);
      jobParts.push({ fn: call.fn, args });
    }
    this.pool.pool.run(this.pool.arena, jobParts, (part) => this.callLocal(part));
    this.parallelRuns++;
  }

  /** Where a prepared weight lives in the arena and its kernel type id (undefined: not placed, TS path). */
  placement(w: Weight): Readonly<Placed> | undefined {
    return this.placed.get(w);
  }

  /** Stored row r of a placed weight decoded to f32 by the kernels (a fresh copy). */
  dequantizeRow(w: Weight, r: number): Float32Array {
    const p = this.placed.get(w);
    if (p === undefined) throw new KernelLoadError(`weight of ${w.dtype} is not in the WASM arena`);
    if (!Number.isInteger(r) || r < 0 || r >= w.storedRows) throw new RangeError(`row ${r} outside [0, ${w.storedRows})`);
    const y = this.ensure(this.scratch, w.storedCols, 4);
    this.arena.k.dq_row(p.type, p.ptr, w.rowBytes, r, w.storedCols, y);
    return this.arena.f32(y, w.storedCols).slice();
  }

  /** x (at xPtr in the arena) quantized to Q8_0/Q8_1 by the kernels, once per input. */
  private q8Input(xPtr: number, n: number, quantized: QuantizedInput): NonNullable<QuantizedInput['q8']> {
    if (quantized.q8 !== undefined) return quantized.q8;
    const nb = n / 32;
    const ptrs = {
      ap: this.ensure(this.ap, n, 2),
      ad: this.ensure(this.ad, nb, 4),
      qs: this.ensure(this.qs, nb, 4),
      xs: this.ensure(this.xs, nb, 4),
    };
    this.arena.k.quant_q8(xPtr, n, ptrs.ap, ptrs.ad, ptrs.qs, ptrs.xs);
    quantized.q8 = ptrs;
    return ptrs;
  }

  /** x (at xPtr in the arena) quantized to Q8_K by the kernels, once per input. */
  private q8kInput(xPtr: number, n: number, quantized: QuantizedInput): NonNullable<QuantizedInput['q8k']> {
    if (quantized.q8k !== undefined) return quantized.q8k;
    const ptrs = {
      kq: this.ensure(this.kq, n, 2),
      kp: this.ensure(this.kp, n, 2),
      kd: this.ensure(this.kd, n / 256, 4),
      ks: this.ensure(this.ks, n / 32, 2),
    };
    this.arena.k.quant_q8k(xPtr, n, ptrs.kq, ptrs.kp, ptrs.kd, ptrs.ks);
    quantized.q8k = ptrs;
    return ptrs;
  }

  /**
   * The row-product kernel of a stored type, with its input: x quantized to the type's vec_dot_type (the same
   * sets the TS path in weights.ts goes by), or f32 x for the float and APR types.
   */
  private rowCall(p: Placed, w: Weight, xPtr: number, outPtr: number, quantized: QuantizedInput): KernelCall {
    if (!isWasmDType(w.dtype)) throw new KernelLoadError(`no WASM row product for ${w.dtype}`);
    const fn = ROW_KERNEL[w.dtype];
    if (w.dtype === 'APR_Q8' || w.dtype === 'APR_Q4') return { fn, args: [p.ptr, 0, w.rows, w.cols, xPtr, outPtr], r0At: 1 };
    const head = [p.ptr, w.rowBytes, 0, w.rows, w.cols];
    // Each family's kernels share one signature (a kernel ignores the pointers its type does not need).
    if (Q8_ACTIVATION_TYPES.has(w.dtype) || Q8_1_ACTIVATION_TYPES.has(w.dtype)) {
      const { ap, ad, qs, xs } = this.q8Input(xPtr, w.cols, quantized);
      return { fn, args: [...head, ap, ad, qs, xs, outPtr], r0At: 2 };
    }
    if (Q8K_ACTIVATION_TYPES.has(w.dtype)) {
      const { kq, kp, kd, ks } = this.q8kInput(xPtr, w.cols, quantized);
      return { fn, args: [...head, kq, kp, kd, ks, outPtr], r0At: 2 };
    }
    return { fn, args: [...head, xPtr, outPtr], r0At: 2 };
  }
}

/** Each WASM type's row-product kernel. */
const ROW_KERNEL = {
  F32: 'mv_f32',
  F16: 'mv_f16',
  BF16: 'mv_bf16',
  Q8_0: 'mv_q8_0',
  Q4_0: 'mv_q4_0',
  Q4_1: 'mv_q4_1',
  Q5_0: 'mv_q5_0',
  Q5_1: 'mv_q5_1',
  Q4_K: 'mv_q4_k',
  Q6_K: 'mv_q6_k',
  APR_Q8: 'mv_apr_q8',
  APR_Q4: 'mv_apr_q4',
} as const satisfies Record<WasmDType, ThreadedFn>;

/** The matrix-vector implementation of a choice (default: WASM on `threads` threads, default the core count). */
export function createMatVec(choice: KernelChoice = 'wasm', threads: number = defaultThreads()): MatVec {
  return choice === 'wasm' ? new WasmMatVec(threads) : new TsMatVec();
}
