/**
 * A kernel worker thread: runs WASM mat-vec row ranges on the same shared memory as the main thread.
 * Plain .mjs (no tsx inside workers). Protocol (src/engine/threads.ts):
 * - messages {attach: id, memory, table} / {detach: id} arrive on the port and are drained synchronously when a job starts;
 * - ctl (Int32Array over a SharedArrayBuffer): ctl[0] job generation (bumped per job; -1 asks workers to exit),
 *   ctl[1] finished count, ctl[2] protocol errors; this worker's slot at SLOT_BASE + index·SLOT_WORDS holds [arena id, fn id, args…];
 *   fn id -1 means no part for this worker in this job.
 */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';

const { module, ctlBuffer, index, fns, slotBase, slotWords, generation } = workerData;
const ctl = new Int32Array(ctlBuffer);
const instances = new Map();

function drain() {
  for (let m = receiveMessageOnPort(parentPort); m !== undefined; m = receiveMessageOnPort(parentPort)) {
    const msg = m.message;
    if (msg.attach !== undefined) {
      const k = new WebAssembly.Instance(module, { env: { memory: msg.memory } }).exports;
      // Each instance has its own globals: point this one at the fp16 table the main thread laid in the memory.
      k.init(msg.table);
      instances.set(msg.attach, k);
    } else if (msg.detach !== undefined) instances.delete(msg.detach);
  }
}

// The generation when the pool created this worker: a job posted while it was starting is still seen as new.
let seen = generation;
for (;;) {
  Atomics.wait(ctl, 0, seen);
  const gen = Atomics.load(ctl, 0);
  if (gen === -1) break;
  seen = gen;
  const at = slotBase + index * slotWords;
  const fn = ctl[at + 1];
  if (fn >= 0) {
    drain();
    const k = instances.get(ctl[at]);
    const name = fns[fn];
    const argc = ctl[at + 2];
    const args = [];
    for (let i = 0; i < argc; i++) args.push(ctl[at + 3 + i]);
    // A job for an arena this worker never attached is a protocol bug: flag it (ctl[2]) rather than leave rows unwritten.
    if (k !== undefined) k[name](...args);
    else Atomics.add(ctl, 2, 1);
  }
  Atomics.add(ctl, 1, 1);
  Atomics.notify(ctl, 1);
}
