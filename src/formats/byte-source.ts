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
