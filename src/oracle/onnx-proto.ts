/**
 * Minimal hand-written protobuf encoder for the subset of the ONNX schema (onnx/onnx.proto, proto2 syntax)
 * that the oracle graphs need. No dependencies.
 *
 * Field numbers (onnx.proto):
 *   ModelProto        ir_version=1 (int64), producer_name=2, graph=7, opset_import=8
 *   OperatorSetIdProto domain=1, version=2 (int64)
 *   GraphProto        node=1, name=2, initializer=5, input=11, output=12
 *   NodeProto         input=1, output=2, name=3, op_type=4, attribute=5, domain=7
 *   AttributeProto    name=1, f=2 (float), i=3 (int64), s=4 (bytes), t=5, floats=7, ints=8, type=20
 *   TensorProto       dims=1 (int64), data_type=2 (int32), name=8, raw_data=9, external_data=13, data_location=14
 *   StringStringEntryProto key=1, value=2
 *   ValueInfoProto    name=1, type=2
 *   TypeProto         tensor_type=1 → TypeProto.Tensor elem_type=1, shape=2
 *   TensorShapeProto  dim=1 → Dimension dim_value=1 (int64), dim_param=2
 *
 * Repeated scalars are written unpacked (the proto2 default); protobuf parsers accept both encodings.
 * Nested messages are kept as lists of byte chunks, so large initializers are copied exactly once (in toBytes).
 *
 * External data (onnx/docs/ExternalData.md): an initializer may instead live in a side file next to the model,
 * `data_location: EXTERNAL` with `location` (path relative to the model file), `offset` and `length` entries. That is
 * how a model passes protobuf's 2 GB message limit, and it lets the builder stream each weight to disk as soon as it
 * is made, so the weights are never all in memory at once.
 */
import { closeSync, openSync, writeSync } from 'node:fs';

export const TensorDataType = { FLOAT: 1, INT64: 7, BOOL: 9 } as const;
export type TensorDataTypeId = (typeof TensorDataType)[keyof typeof TensorDataType];

export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
/** TensorProto.DataLocation.EXTERNAL. */
const DATA_LOCATION_EXTERNAL = 1;

const textEncoder = new TextEncoder();
const MASK64 = (1n << 64n) - 1n;

/** A protobuf message under construction: a list of byte chunks plus their total length. */
class Msg {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length > 0) {
      const b = Uint8Array.from(this.scratch);
      this.chunks.push(b);
      this.length += b.length;
      this.scratch = [];
    }
  }

  private pushVarint(v: bigint): void {
    let x = v & MASK64; // int64 negatives: two's complement, 10 bytes
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      this.scratch.push(byte);
    } while (x !== 0n);
  }

  private tag(field: number, wire: number): void {
    this.pushVarint(BigInt((field << 3) | wire));
  }

  varint(field: number, value: number | bigint): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new Error(`protobuf varint field ${field}: ${value} is not a safe integer`);
    }
    this.tag(field, WIRE_VARINT);
    this.pushVarint(BigInt(value));
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.pushVarint(BigInt(data.length));
    this.flushScratch();
    if (data.length > 0) {
      this.chunks.push(data);
      this.length += data.length;
    }
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, textEncoder.encode(s));
  }

  message(field: number, sub: Msg): this {
    sub.flushScratch();
    this.tag(field, WIRE_LEN);
    this.pushVarint(BigInt(sub.length));
    this.flushScratch();
    for (const c of sub.chunks) this.chunks.push(c);
    this.length += sub.length;
    return this;
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Plain-object descriptions of the messages we encode.

/** Where an external initializer's bytes are: `length` bytes at `offset` of `location` (relative to the model file). */
export interface ExternalDataRef {
  location: string;
  offset: number;
  length: number;
}

export type TensorSpec = {
  name: string;
  dataType: TensorDataTypeId;
  dims: readonly number[];
} & (
  | {
      /** Little-endian raw bytes of the tensor, row-major. */
      rawData: Uint8Array;
    }
  | { external: ExternalDataRef }
);

export type AttrValue =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number | bigint }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; value: TensorSpec }
  | { kind: 'floats'; value: readonly number[] }
  | { kind: 'ints'; value: readonly (number | bigint)[] };

/** Typed attribute constructors (ONNX distinguishes INT from FLOAT, so plain numbers are ambiguous). */
export const attr = {
  float: (value: number): AttrValue => ({ kind: 'float', value }),
  int: (value: number | bigint): AttrValue => ({ kind: 'int', value }),
  string: (value: string): AttrValue => ({ kind: 'string', value }),
  tensor: (value: TensorSpec): AttrValue => ({ kind: 'tensor', value }),
  floats: (value: readonly number[]): AttrValue => ({ kind: 'floats', value }),
  ints: (value: readonly (number | bigint)[]): AttrValue => ({ kind: 'ints', value }),
};

export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: Readonly<Record<string, AttrValue>>;
}

/** A dimension is a fixed size or a symbolic name (dim_param). */
export type DimSpec = number | string;

export interface ValueInfoSpec {
  name: string;
  elemType: TensorDataTypeId;
  shape: readonly DimSpec[];
}

export interface ModelSpec {
  irVersion: number;
  producerName: string;
  opsets: readonly { domain: string; version: number }[];
  graph: {
    name: string;
    nodes: readonly NodeSpec[];
    initializers: readonly TensorSpec[];
    inputs: readonly ValueInfoSpec[];
    outputs: readonly ValueInfoSpec[];
  };
}

// ---------------------------------------------------------------------------------------------
// Encoders.

function encodeTensor(t: TensorSpec): Msg {
  const m = new Msg();
  for (const d of t.dims) m.varint(1, d);
  m.varint(2, t.dataType);
  m.string(8, t.name);
  if ('rawData' in t) {
    m.bytes(9, t.rawData);
  } else {
    const entries = [
      ['location', t.external.location],
      ['offset', String(t.external.offset)],
      ['length', String(t.external.length)],
    ] as const;
    for (const [key, value] of entries) m.message(13, new Msg().string(1, key).string(2, value));
    m.varint(14, DATA_LOCATION_EXTERNAL);
  }
  return m;
}

function encodeAttribute(name: string, a: AttrValue): Msg {
  const m = new Msg();
  m.string(1, name);
  switch (a.kind) {
    case 'float':
      m.float(2, a.value);
      m.varint(20, AttributeType.FLOAT);
      break;
    case 'int':
      m.varint(3, a.value);
      m.varint(20, AttributeType.INT);
      break;
    case 'string':
      m.string(4, a.value);
      m.varint(20, AttributeType.STRING);
      break;
    case 'tensor':
      m.message(5, encodeTensor(a.value));
      m.varint(20, AttributeType.TENSOR);
      break;
    case 'floats':
      for (const v of a.value) m.float(7, v);
      m.varint(20, AttributeType.FLOATS);
      break;
    case 'ints':
      for (const v of a.value) m.varint(8, v);
      m.varint(20, AttributeType.INTS);
      break;
  }
  return m;
}

function encodeNode(n: NodeSpec): Msg {
  const m = new Msg();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  if (n.name !== undefined) m.string(3, n.name);
  m.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) m.message(5, encodeAttribute(k, v));
  if (n.domain !== undefined && n.domain !== '') m.string(7, n.domain);
  return m;
}

function encodeValueInfo(v: ValueInfoSpec): Msg {
  const shape = new Msg();
  for (const d of v.shape) {
    const dim = new Msg();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new Msg().varint(1, v.elemType).message(2, shape);
  const type = new Msg().message(1, tensorType);
  return new Msg().string(1, v.name).message(2, type);
}

export function encodeModel(spec: ModelSpec): Uint8Array {
  const g = new Msg();
  for (const n of spec.graph.nodes) g.message(1, encodeNode(n));
  g.string(2, spec.graph.name);
  for (const t of spec.graph.initializers) g.message(5, encodeTensor(t));
  for (const i of spec.graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of spec.graph.outputs) g.message(12, encodeValueInfo(o));

  const m = new Msg();
  m.varint(1, spec.irVersion);
  m.string(2, spec.producerName);
  m.message(7, g);
  for (const os of spec.opsets) {
    const o = new Msg();
    if (os.domain !== '') o.string(1, os.domain);
    o.varint(2, os.version);
    m.message(8, o);
  }
  return m.finish();
}

// ---------------------------------------------------------------------------------------------
// GraphBuilder.

export const IR_VERSION = 8;
export const AI_ONNX_OPSET = 18;

function f32Bytes(data: Float32Array): Uint8Array {
  // Typed arrays are little-endian on every platform Node supports. No copy: the builder keeps a view of the
  // caller's array until toBytes(), so the caller must not mutate it in between.
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function i64Bytes(data: readonly (number | bigint)[] | BigInt64Array): Uint8Array {
  const arr = new BigInt64Array(data.length);
  for (let i = 0; i < data.length; i++) arr[i] = BigInt(data[i] as number | bigint); // i < data.length
  return new Uint8Array(arr.buffer);
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/**
 * Page alignment of external initializers: onnxruntime memory-maps an external tensor instead of copying it when
 * its offset is a multiple of the allocation granularity (4 KiB on Linux), as onnx's own converter aligns them.
 */
export const EXTERNAL_DATA_ALIGNMENT = 4096;

/** Where a GraphBuilder streams its large initializers. */
export interface ExternalDataOptions {
  /** The data file to create (truncated first); it must sit next to the model file the bytes are written to. */
  path: string;
  /** Its name as the model records it, relative to the model file's directory. */
  location: string;
  /** Initializers of at least this many bytes go to the file; smaller ones stay inline. */
  minBytes: number;
}

/** Appends byte blocks to a file at page-aligned offsets; opens the file per write so no descriptor outlives a call. */
class ExternalDataWriter {
  private end = 0;

  constructor(readonly opts: ExternalDataOptions) {
    closeSync(openSync(opts.path, 'w'));
  }

  /** Total bytes written so far (padding included). */
  get size(): number {
    return this.end;
  }

  append(data: Uint8Array): ExternalDataRef {
    const offset = Math.ceil(this.end / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
    const fd = openSync(this.opts.path, 'r+');
    try {
      let done = 0;
      // writeSync may write less than asked for large buffers; loop until the block is on disk.
      while (done < data.length) done += writeSync(fd, data, done, data.length - done, offset + done);
    } finally {
      closeSync(fd);
    }
    this.end = offset + data.length;
    return { location: this.opts.location, offset, length: data.length };
  }
}

export interface OpOptions {
  /** Output names, or how many fresh outputs to create (default 1). */
  outputs?: number | readonly string[];
  name?: string;
  domain?: string;
}

/** Builds an ONNX ModelProto (ir_version 8, ai.onnx opset 18) node by node. */
export class GraphBuilder {
  private readonly nodes: NodeSpec[] = [];
  private readonly initializers: TensorSpec[] = [];
  private readonly inputs: ValueInfoSpec[] = [];
  private readonly outputs: ValueInfoSpec[] = [];
  private readonly names = new Set<string>();
  private counter = 0;
  private readonly external: ExternalDataWriter | undefined;

  /**
   * With `opts.externalData`, initializers of at least `minBytes` are written to that file as they are added (the
   * caller may drop its array right after), and the model refers to them by location, offset and length.
   */
  constructor(
    readonly graphName = 'graph',
    readonly producerName = 'tiny-model-ground-truth',
    opts: { externalData?: ExternalDataOptions } = {},
  ) {
    this.external = opts.externalData !== undefined ? new ExternalDataWriter(opts.externalData) : undefined;
  }

  /** Bytes written to the external data file so far (0 without one). */
  get externalBytes(): number {
    return this.external?.size ?? 0;
  }

  private addInitializer(name: string, dataType: TensorDataTypeId, dims: readonly number[], rawData: Uint8Array): void {
    const base = { name: this.claim(name), dataType, dims: [...dims] };
    if (this.external !== undefined && rawData.length >= this.external.opts.minBytes) {
      this.initializers.push({ ...base, external: this.external.append(rawData) });
    } else {
      // Inline: a view of the caller's array is kept until toBytes(), so copy it (only small tensors get here
      // when streaming, and without streaming the caller keeps its arrays alive anyway).
      this.initializers.push({ ...base, rawData: this.external !== undefined ? rawData.slice() : rawData });
    }
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`GraphBuilder: duplicate value name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** A fresh, unused value name with the given prefix. */
  fresh(prefix: string): string {
    let n: string;
    do n = `${prefix}_${this.counter++}`;
    while (this.names.has(n));
    return n;
  }

  initF32(name: string, dims: readonly number[], data: Float32Array): string {
    if (product(dims) !== data.length) {
      throw new Error(`initializer '${name}': dims [${dims.join(',')}] need ${product(dims)} values, got ${data.length}`);
    }
    this.addInitializer(name, TensorDataType.FLOAT, dims, f32Bytes(data));
    return name;
  }

  initI64(name: string, dims: readonly number[], data: readonly (number | bigint)[] | BigInt64Array): string {
    if (product(dims) !== data.length) {
      throw new Error(`initializer '${name}': dims [${dims.join(',')}] need ${product(dims)} values, got ${data.length}`);
    }
    this.addInitializer(name, TensorDataType.INT64, dims, i64Bytes(data));
    return name;
  }

  input(name: string, elemType: TensorDataTypeId, shape: readonly DimSpec[]): string {
    this.inputs.push({ name: this.claim(name), elemType, shape: [...shape] });
    return name;
  }

  /** Declares an existing value (node output) as a graph output. */
  output(name: string, elemType: TensorDataTypeId, shape: readonly DimSpec[]): string {
    if (!this.names.has(name)) throw new Error(`GraphBuilder: output '${name}' is not produced by the graph`);
    this.outputs.push({ name, elemType, shape: [...shape] });
    return name;
  }

  /** Adds a node; returns its output names. */
  op(opType: string, inputs: readonly string[], attrs: Readonly<Record<string, AttrValue>> = {}, opts: OpOptions = {}): string[] {
    for (const i of inputs) {
      if (i !== '' && !this.names.has(i)) throw new Error(`GraphBuilder: ${opType} input '${i}' is undefined`);
    }
    const spec = opts.outputs ?? 1;
    const outs = typeof spec === 'number' ? Array.from({ length: spec }, () => this.fresh(opType.toLowerCase())) : [...spec];
    for (const o of outs) this.claim(o);
    const node: NodeSpec = {
      opType,
      inputs: [...inputs],
      outputs: outs,
      name: opts.name ?? this.fresh(`n_${opType}`),
      attributes: attrs,
    };
    if (opts.domain !== undefined) node.domain = opts.domain;
    this.nodes.push(node);
    return outs;
  }

  /** Like op() for a single-output node; returns the output name. */
  op1(
    opType: string,
    inputs: readonly string[],
    attrs: Readonly<Record<string, AttrValue>> = {},
    opts: Omit<OpOptions, 'outputs'> & { output?: string } = {},
  ): string {
    const { output, ...rest } = opts;
    const outs = this.op(opType, inputs, attrs, { ...rest, outputs: output !== undefined ? [output] : 1 });
    return outs[0] as string; // one output was asked for
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  toBytes(): Uint8Array {
    return encodeModel({
      irVersion: IR_VERSION,
      producerName: this.producerName,
      opsets: [{ domain: '', version: AI_ONNX_OPSET }],
      graph: {
        name: this.graphName,
        nodes: this.nodes,
        initializers: this.initializers,
        inputs: this.inputs,
        outputs: this.outputs,
      },
    });
  }
}
