/**
 * APR v2 writer, laid out as aprender's `AprV2Writer::write`: 64-byte header (LAYOUT_ROW_MAJOR set,
 * header CRC-32), JSON metadata zero-padded to 64, the name-sorted packed tensor index zero-padded to 64,
 * each tensor's data zero-padded to 64, then the footer CRC-32 of everything before it.
 *
 * Like the GGUF writer, offsets and size_bytes come from the data actually given, so a mutant converter
 * can write bytes that disagree with dtype × shape and the reader must catch it. aprender's quirks are
 * kept: names are truncated to 256 bytes and shapes to 8 dims in the index.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { quantize } from '../codecs/index.js';
import { quantizeAprQ4, quantizeAprQ8, type AprQuantOptions } from '../codecs/apr.js';
import { crc32 } from './crc32.js';
import {
  alignUp,
  APR_DTYPE_CODES,
  APR_FLAGS,
  APR_HEADER_BYTES,
  APR_MAGIC,
  APR_MAX_DIMS,
  APR_MAX_NAME_BYTES,
  APR_VERSION_MAJOR,
  APR_VERSION_MINOR,
  compareCodePoints,
  type AprDType,
} from './format.js';

/** One tensor to write. `data` is written as is; its length is the entry's size_bytes. */
export interface AprTensorIn {
  name: string;
  /** torch order (outermost first), as APR stores it. */
  shape: number[];
  dtype: AprDType;
  data: Uint8Array;
  /** Override the dtype code written (legacy 8/9, or a bad code for a mutant). */
  rawType?: number;
}

export interface AprWriteInput {
  /** JSON metadata: an object (written with JSON.stringify, compact) or the exact JSON text. Default `{}`. */
  metadata?: Record<string, unknown> | string;
  tensors: AprTensorIn[];
  /** Header flags; default LAYOUT_ROW_MAJOR, as `AprV2Writer::new`. */
  flags?: number;
}

const encoder = new TextEncoder();

interface Layout {
  /** Header, padded metadata and padded index: everything before the data section. */
  head: Uint8Array;
  /** Tensors in file (name) order. */
  order: AprTensorIn[];
  paddings: number[];
  totalBytes: number;
}

/** aprender sorts with `a.name.cmp(&b.name)` (byte order) and a stable sort, so equal names keep input order. */
function layout(input: AprWriteInput): Layout {
  const order = [...input.tensors].sort((a, b) => compareCodePoints(a.name, b.name));
  const metaText = typeof input.metadata === 'string' ? input.metadata : JSON.stringify(input.metadata ?? {});
  const meta = encoder.encode(metaText);
  if (meta.length > 0xffffffff) throw new Error(`APR writer: metadata is ${meta.length} bytes, more than metadata_size (u32) can hold`);

  const entries: Uint8Array[] = [];
  const paddings: number[] = [];
  let dataOffset = 0;
  for (const t of order) {
    const name = encoder.encode(t.name).subarray(0, APR_MAX_NAME_BYTES);
    const dims = t.shape.slice(0, APR_MAX_DIMS);
    for (const d of dims) {
      if (!Number.isSafeInteger(d) || d < 0) throw new Error(`APR writer: tensor '${t.name}': bad dimension ${d}`);
    }
    const e = new Uint8Array(2 + name.length + 2 + 8 * dims.length + 16);
    const dv = new DataView(e.buffer);
    dv.setUint16(0, name.length, true);
    e.set(name, 2);
    let at = 2 + name.length;
    e[at++] = t.rawType ?? APR_DTYPE_CODES[t.dtype];
    e[at++] = dims.length;
    for (const d of dims) {
      dv.setBigUint64(at, BigInt(d), true);
      at += 8;
    }
    dv.setBigUint64(at, BigInt(dataOffset), true);
    dv.setBigUint64(at + 8, BigInt(t.data.length), true);
    entries.push(e);
    const padded = alignUp(t.data.length);
    paddings.push(padded - t.data.length);
    dataOffset += padded;
  }
  const indexBytes = entries.reduce((n, e) => n + e.length, 0);
  const metadataOffset = APR_HEADER_BYTES;
  const indexOffset = metadataOffset + alignUp(meta.length);
  const dataSection = indexOffset + alignUp(indexBytes);

  const head = new Uint8Array(dataSection);
  const dv = new DataView(head.buffer);
  head.set(APR_MAGIC, 0);
  head[4] = APR_VERSION_MAJOR;
  head[5] = APR_VERSION_MINOR;
  dv.setUint16(6, input.flags ?? APR_FLAGS.LAYOUT_ROW_MAJOR, true);
  dv.setUint32(8, order.length, true);
  dv.setBigUint64(12, BigInt(metadataOffset), true);
  dv.setUint32(20, meta.length, true);
  dv.setBigUint64(24, BigInt(indexOffset), true);
  dv.setBigUint64(32, BigInt(dataSection), true);
  dv.setUint32(40, crc32(head.subarray(44, 64), crc32(head.subarray(0, 40))), true);
  head.set(meta, metadataOffset);
  let at = indexOffset;
  for (const e of entries) {
    head.set(e, at);
    at += e.length;
  }
  return { head, order, paddings, totalBytes: dataSection + dataOffset + 4 };
}

/** Encode a whole APR v2 file in memory. */
export function encodeApr(input: AprWriteInput): Uint8Array {
  const { head, order, paddings, totalBytes } = layout(input);
  const file = new Uint8Array(totalBytes);
  file.set(head, 0);
  let at = head.length;
  order.forEach((t, i) => {
    file.set(t.data, at);
    at += t.data.length + (paddings[i] as number);
  });
  new DataView(file.buffer).setUint32(at, crc32(file.subarray(0, at)), true);
  return file;
}

/**
 * Write an APR v2 file tensor by tensor (never concatenating the model into one buffer; the footer CRC
 * is accumulated as it goes), to a temporary name first and renamed into place.
 */
export function writeAprFile(path: string, input: AprWriteInput): void {
  const { head, order, paddings } = layout(input);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    let c = 0;
    const put = (bytes: Uint8Array): void => {
      c = crc32(bytes, c);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    };
    put(head);
    const zeros = new Uint8Array(64);
    order.forEach((t, i) => {
      put(t.data);
      put(zeros.subarray(0, paddings[i] as number));
    });
    const footer = new Uint8Array(4);
    new DataView(footer.buffer).setUint32(0, c, true);
    writeSync(fd, footer);
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
}

/** The f32 → storage encodings aprender's writer has (`add_f32_tensor`, `add_f16_tensor`, `add_q8_tensor`, `add_q4_tensor`), plus BF16/F64. */
export type AprEncodableDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'APR_Q8' | 'APR_Q4';

/**
 * A tensor encoded from f32 the way aprender does it: F16 round to nearest even (its current IEEE
 * encoder), APR_Q8/APR_Q4 as `add_q8_tensor`/`add_q4_tensor` (density check on unless disabled).
 */
export function aprTensorFromF32(
  name: string,
  shape: number[],
  values: Float32Array,
  dtype: AprEncodableDType,
  options: AprQuantOptions = {},
): AprTensorIn {
  const data =
    dtype === 'APR_Q8' ? quantizeAprQ8(values, options) : dtype === 'APR_Q4' ? quantizeAprQ4(values, options) : quantize(dtype, values);
  return { name, shape, dtype, data };
}
