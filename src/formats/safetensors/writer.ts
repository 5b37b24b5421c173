/**
 * safetensors writer matching the Rust `serialize` (`prepare`, formats.md §3): tensors sorted by
 * descending dtype (the `Dtype` enum's alignment order) then by name (byte order), `__metadata__` first
 * and only when given, compact JSON (serde_json spelling: `{"dtype":…,"shape":[…],"data_offsets":[b,e]}`),
 * the header right-padded with spaces to a multiple of 8, then the tensors' bytes back to back.
 *
 * Offsets come from the data actually given (as the GGUF and APR writers do), so a mutant converter can
 * write bytes that disagree with dtype × shape and the reader must catch it.
 */
import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { compareCodePoints } from '../apr/format.js';
import { safetensorsDTypeRank, type SafetensorsDType } from './dtypes.js';

export interface SafetensorsTensorIn {
  name: string;
  shape: number[];
  dtype: SafetensorsDType;
  data: Uint8Array;
}

function order(tensors: SafetensorsTensorIn[]): SafetensorsTensorIn[] {
  const rank = (t: SafetensorsTensorIn): number => safetensorsDTypeRank(t.dtype) ?? -1;
  return [...tensors].sort((a, b) => rank(b) - rank(a) || compareCodePoints(a.name, b.name));
}

/** The 8-byte length and the padded JSON header, and the tensors in file order. */
function header(tensors: SafetensorsTensorIn[], metadata: Record<string, string>): { prefix: Uint8Array; order: SafetensorsTensorIn[] } {
  const sorted = order(tensors);
  // Built by hand, not JSON.stringify(object): JS objects put integer-like keys ("0", "1") first.
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  const seen = new Set<string>();
  let at = 0;
  for (const t of sorted) {
    if (t.name === '__metadata__') throw new Error(`safetensors writer: '__metadata__' is reserved, not a tensor name`);
    if (seen.has(t.name)) throw new Error(`safetensors writer: duplicate tensor name '${t.name}'`);
    seen.add(t.name);
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] })}`);
    at += t.data.length;
  }
  let json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) {
    const padded = new Uint8Array(json.length + pad).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const prefix = new Uint8Array(8 + json.length);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
  prefix.set(json, 8);
  return { prefix, order: sorted };
}

/** Encode a whole safetensors file in memory. */
export function encodeSafetensors(tensors: SafetensorsTensorIn[], metadata: Record<string, string> = {}): Uint8Array {
  const { prefix, order: sorted } = header(tensors, metadata);
  const file = new Uint8Array(prefix.length + sorted.reduce((n, t) => n + t.data.length, 0));
  file.set(prefix);
  let at = prefix.length;
  for (const t of sorted) {
    file.set(t.data, at);
    at += t.data.length;
  }
  return file;
}

/** Write a safetensors file tensor by tensor, to a temporary name first and renamed into place. */
export function writeSafetensorsFile(path: string, tensors: SafetensorsTensorIn[], metadata: Record<string, string> = {}): void {
  const { prefix, order: sorted } = header(tensors, metadata);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  let ok = false;
  try {
    for (const bytes of [prefix, ...sorted.map((t) => t.data)]) {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done);
    }
    ok = true;
  } finally {
    closeSync(fd);
    if (!ok) rmSync(tmp, { force: true });
  }
  renameSync(tmp, path);
}

/** The bytes of an f32 array (a view, not a copy). */
export function f32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}
