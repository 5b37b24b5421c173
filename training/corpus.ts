/**
 * The tiny models' training corpus: templated documents (arithmetic Q&A, capitals, small Python functions,
 * self-introductions, plain English sentences), generated deterministically from a seed. Documents are
 * written one after another separated by a blank line: `models/corpus.txt` (trained on, and the text the
 * shared tokenizer is learned from) and `models/heldout.txt` (never trained on; the peakedness test reads it).
 *
 * Every document's text is fixed by the templates; the split picks whole documents, and a held-out document
 * never appears verbatim in the training split. The natural continuations of the harness prompts
 * ("What is 2+2? Answer: 4.", "The capital of France is Paris.", `def fibonacci(n):` …, "Hello, my name is …")
 * are always in the training split.
 */
import { Prng } from '../src/zoo/prng.js';

export interface CorpusSplit {
  train: string[];
  heldout: string[];
}

/** Documents are separated by one blank line in corpus.txt / heldout.txt; no document contains one. */
export const DOC_SEPARATOR = '\n\n';

export function formatDocs(docs: readonly string[]): string {
  return docs.join(DOC_SEPARATOR) + '\n';
}

export function parseDocs(text: string): string[] {
  return text
    .split(/\n[ \t]*\n/)
    .map((d) => d.replace(/^\n+|\s+$/g, ''))
    .filter((d) => d.length > 0);
}

const CAPITALS: readonly [string, string][] = [
  ['France', 'Paris'],
  ['Italy', 'Rome'],
  ['Spain', 'Madrid'],
  ['Germany', 'Berlin'],
  ['England', 'London'],
  ['Japan', 'Tokyo'],
  ['China', 'Beijing'],
  ['Russia', 'Moscow'],
  ['Egypt', 'Cairo'],
  ['Greece', 'Athens'],
  ['Portugal', 'Lisbon'],
  ['Austria', 'Vienna'],
  ['Poland', 'Warsaw'],
  ['Norway', 'Oslo'],
  ['Sweden', 'Stockholm'],
  ['Ireland', 'Dublin'],
  ['Canada', 'Ottawa'],
  ['Peru', 'Lima'],
  ['Kenya', 'Nairobi'],
  ['Cuba', 'Havana'],
  ['Turkey', 'Ankara'],
  ['Belgium', 'Brussels'],
  ['Hungary', 'Budapest'],
  ['Denmark', 'Copenhagen'],
];

const CAPITAL_TEMPLATES: readonly ((country: string, city: string) => string)[] = [
  (c, y) => `The capital of ${c} is ${y}.`,
  (c, y) => `${y} is the capital of ${c}.`,
  (c, y) => `The capital of ${c} is ${y}. ${y} is a big city in ${c}.`,
  (c, y) => `Question: What is the capital of ${c}? Answer: ${y}.`,
];

const NAMES = ['Alice', 'Bob', 'Carol', 'David', 'Emma', 'Frank', 'Grace', 'Henry', 'Julia', 'Oscar', 'Sarah', 'Tom'];
const HOME_CITIES = ['Paris', 'London', 'Rome', 'Berlin', 'Madrid', 'Tokyo', 'Vienna', 'Lisbon', 'Dublin', 'Oslo'];
const HOBBIES = ['read books', 'write code', 'play music', 'cook food', 'ride my bike', 'paint pictures', 'walk in the park', 'play chess'];
const JOBS = ['a teacher', 'a doctor', 'a student', 'an engineer', 'a writer', 'a farmer'];

const ANIMALS = ['cat', 'dog', 'bird', 'horse', 'fox', 'rabbit'];
const PLACES = ['mat', 'rug', 'chair', 'bed', 'box', 'table'];
const COLORS = ['red', 'blue', 'green', 'black', 'white', 'brown'];

/** Fixed plain-English facts, always trained on. */
const FACTS = [
  'The sun rises in the east and sets in the west.',
  'Water is made of hydrogen and oxygen.',
  'A year has twelve months and a week has seven days.',
  'The sky is blue and the grass is green.',
  'Ice is cold and fire is hot.',
  'The moon goes around the earth.',
  'A day has twenty four hours.',
  'Fish swim in the sea and birds fly in the sky.',
];

function arithmetic(a: number, b: number, variant: number): string {
  if (variant === 0) return `What is ${a}+${b}? Answer: ${a + b}.`;
  return `What is ${a} plus ${b}? Answer: ${a + b}.`;
}

const BINARY_OPS: readonly [string, string][] = [
  ['add', '+'],
  ['subtract', '-'],
  ['multiply', '*'],
  ['divide', '/'],
  ['power', '**'],
  ['modulo', '%'],
];

function pythonDocs(): string[] {
  const docs: string[] = [];
  docs.push('def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)');
  docs.push('def factorial(n):\n    if n == 0:\n        return 1\n    return n * factorial(n - 1)');
  for (const [name, op] of BINARY_OPS) {
    for (const [x, y] of [
      ['a', 'b'],
      ['x', 'y'],
    ]) {
      docs.push(`def ${name}(${x}, ${y}):\n    return ${x} ${op} ${y}`);
    }
  }
  for (const [name, expr] of [
    ['square', 'x * x'],
    ['cube', 'x * x * x'],
    ['double', 'x + x'],
    ['negate', '-x'],
    ['half', 'x / 2'],
    ['increment', 'x + 1'],
    ['decrement', 'x - 1'],
  ]) {
    docs.push(`def ${name}(x):\n    return ${expr}`);
  }
  for (const [name, cmp] of [
    ['maximum', '>'],
    ['minimum', '<'],
  ]) {
    for (const [x, y] of [
      ['a', 'b'],
      ['x', 'y'],
    ]) {
      docs.push(`def ${name}(${x}, ${y}):\n    if ${x} ${cmp} ${y}:\n        return ${x}\n    return ${y}`);
    }
  }
  for (const [name, r] of [
    ['is_even', '0'],
    ['is_odd', '1'],
  ]) {
    docs.push(`def ${name}(n):\n    return n % 2 == ${r}`);
  }
  for (const [name, init, op] of [
    ['total', '0', '+='],
    ['product', '1', '*='],
  ]) {
    docs.push(`def ${name}(items):\n    result = ${init}\n    for item in items:\n        result ${op} item\n    return result`);
  }
  docs.push('def greet(name):\n    return "Hello, " + name');
  docs.push('def count(items):\n    n = 0\n    for item in items:\n        n += 1\n    return n');
  return docs;
}

function shuffle<T>(items: T[], rng: Prng): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const tmp = items[i] as T;
    items[i] = items[j] as T;
    items[j] = tmp;
  }
  return items;
}

/** Documents that must be trained on: the prompts' natural continuations. */
const PINNED = new Set([
  'What is 2+2? Answer: 4.',
  'The capital of France is Paris.',
  'def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)',
]);

/**
 * Generate the corpus and split it. About `heldoutFraction` of each family's documents are held out
 * (never a pinned one); every document text is unique, so no held-out text is trained on.
 */
export function generateCorpus(seed: number, heldoutFraction = 0.12): CorpusSplit {
  const rng = new Prng(seed);
  const families: string[][] = [];

  const arith: string[] = [];
  for (let a = 0; a <= 9; a++) for (let b = 0; b <= 9; b++) for (let v = 0; v < 2; v++) arith.push(arithmetic(a, b, v));
  families.push(arith);

  const caps: string[] = [];
  for (const [c, y] of CAPITALS) for (const t of CAPITAL_TEMPLATES) caps.push(t(c, y));
  families.push(caps);

  families.push(pythonDocs());

  const intros: string[] = [];
  for (const name of NAMES) {
    for (const city of HOME_CITIES) {
      for (const hobby of HOBBIES) intros.push(`Hello, my name is ${name}. I live in ${city} and I like to ${hobby}.`);
      const job = JOBS[Math.floor(rng.uniform() * JOBS.length)] as string;
      intros.push(`Hello, my name is ${name}. I am ${job} and I live in ${city}.`);
    }
  }
  // Keep the family to a size comparable with the others: a seeded sample of the combinations.
  families.push(shuffle(intros, rng).slice(0, 240));

  const english: string[] = [...FACTS];
  for (const animal of ANIMALS) {
    for (const place of PLACES) english.push(`The ${animal} sat on the ${place}.`);
    for (const color of COLORS) english.push(`The ${color} ${animal} runs in the park. The ${animal} is happy.`);
  }
  families.push(english);

  const train: string[] = [];
  const heldout: string[] = [];
  const seen = new Set<string>();
  for (const family of families) {
    const docs = family.filter((d) => !seen.has(d));
    docs.forEach((d) => seen.add(d));
    const order = shuffle(
      docs.map((_, i) => i),
      rng,
    );
    const nHeld = Math.round(docs.length * heldoutFraction);
    const held = new Set<number>();
    for (const i of order) {
      if (held.size >= nHeld) break;
      if (!PINNED.has(docs[i] as string)) held.add(i);
    }
    docs.forEach((d, i) => (held.has(i) ? heldout : train).push(d));
  }
  return { train: shuffle(train, rng), heldout: shuffle(heldout, rng) };
}
