import { closeSync, openSync, writeSync } from 'node:fs';
import type { DType } from '../types.js';

export interface SafetensorsTensorIn {
  name: string;
  shape: number[];
  dtype: Extract<DType, 'F32' | 'F16' | 'BF16'>;
  data: Uint8Array;
}

/** Header JSON padded with spaces to a multiple of 8, as the Rust writer does; tensors sorted by name. */
function header(tensors: SafetensorsTensorIn[], metadata: Record<string, string>): { json: Uint8Array; order: SafetensorsTensorIn[] } {
  const order = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const obj: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) obj['__metadata__'] = metadata;
  let at = 0;
  for (const t of order) {
    obj[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  let text = JSON.stringify(obj);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  return { json: new TextEncoder().encode(text), order };
}

export function writeSafetensorsFile(path: string, tensors: SafetensorsTensorIn[], metadata: Record<string, string> = {}): void {
  const { json, order } = header(tensors, metadata);
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, len);
    writeSync(fd, json);
    for (const t of order) writeSync(fd, t.data);
  } finally {
    closeSync(fd);
  }
}

export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
