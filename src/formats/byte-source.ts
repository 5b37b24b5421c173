import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Random-access bytes. Readers only ever ask for what they need, after bounds-checking it. */
export interface ByteSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset`; throws RangeError when that runs past `size`. */
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export class BufferByteSource implements ByteSource {
  constructor(private readonly bytes: Uint8Array) {}
  get size(): number {
    return this.bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.bytes.length) {
      throw new RangeError(`read of ${length} bytes at ${offset} past end ${this.bytes.length}`);
    }
    return this.bytes.subarray(offset, offset + length);
  }
  close(): void {}
}

export class FileByteSource implements ByteSource {
  private fd: number | undefined;
  readonly size: number;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    this.size = fstatSync(this.fd).size;
  }
  read(offset: number, length: number): Uint8Array {
    if (this.fd === undefined) throw new Error(`${this.path} is closed`);
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`read of ${length} bytes at ${offset} past end ${this.size}`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new RangeError(`unexpected end of ${this.path} at ${offset + done}`);
      done += n;
    }
    return out;
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Several sources read as one, end to end (a sharded checkpoint's files, each tensor at its shard's base offset plus
 * its own). A read may span a boundary. Closing it closes every part.
 */
export class ConcatByteSource implements ByteSource {
  readonly size: number;
  /** Where each part starts. */
  readonly bases: readonly number[];
  constructor(private readonly parts: readonly ByteSource[]) {
    const bases: number[] = [];
    let at = 0;
    for (const p of parts) {
      bases.push(at);
      at += p.size;
    }
    this.bases = bases;
    this.size = at;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new RangeError(`read of ${length} bytes at ${offset} past end ${this.size}`);
    }
    const out = new Uint8Array(length);
    let done = 0;
    for (let i = 0; i < this.parts.length && done < length; i++) {
      const part = this.parts[i] as ByteSource; // i < parts.length
      const base = this.bases[i] as number; // one base per part
      const from = offset + done;
      if (from >= base + part.size) continue;
      const n = Math.min(length - done, base + part.size - from);
      out.set(part.read(from - base, n), done);
      done += n;
    }
    return out;
  }
  close(): void {
    for (const p of this.parts) p.close();
  }
}
