// Local lint rules of tiny-model-ground-truth: the layer direction of DESIGN.md §3, and casts that say why.
import { dirname, join, relative, sep } from 'node:path';

/**
 * Which layers a file under src/<layer>/ may import (besides its own layer). A root-level module (src/errors.ts)
 * is its own layer. Nothing imports cli; report sees only result types; contracts and metrics (pure functions) import nothing.
 */
/** Every layer but cli itself: what the CLI and the library entry (src/index.ts) may import. */
const BELOW_CLI = [
  'contracts',
  'errors',
  'metrics',
  'cache',
  'config',
  'config-file',
  'formats',
  'zoo',
  'engine',
  'checks',
  'converters',
  'oracle',
  'engines',
  'matrix',
  'report',
];

export const LAYERS = {
  contracts: [],
  errors: [],
  metrics: [],
  cache: ['errors'],
  config: ['contracts'],
  formats: ['contracts', 'errors', 'metrics'],
  zoo: ['contracts', 'errors', 'metrics', 'cache', 'formats'],
  engine: ['contracts', 'errors', 'metrics', 'formats'],
  checks: ['contracts', 'errors', 'metrics', 'cache', 'config', 'formats', 'zoo', 'engine'],
  converters: ['contracts', 'errors', 'metrics', 'cache', 'config', 'formats', 'zoo'],
  oracle: ['contracts', 'errors', 'metrics', 'cache', 'config', 'formats', 'zoo'],
  engines: ['contracts', 'errors', 'metrics', 'formats', 'engine', 'zoo'],
  'config-file': ['contracts', 'errors', 'metrics', 'converters'],
  matrix: ['contracts', 'errors', 'metrics', 'cache', 'config', 'formats', 'zoo', 'engine', 'checks', 'converters', 'oracle', 'engines'],
  report: ['contracts', 'errors'],
  cli: BELOW_CLI,
  index: BELOW_CLI,
};

function layerOf(srcRoot, file) {
  const rel = relative(srcRoot, file);
  if (rel.startsWith('..')) return undefined;
  const [first, ...rest] = rel.split(sep);
  return rest.length === 0 ? first.replace(/\.[mc]?[jt]s$/, '') : first;
}

const layers = {
  meta: { type: 'problem', docs: { description: 'imports follow the layer direction of DESIGN.md §3' }, schema: [] },
  create(context) {
    const srcRoot = join(context.cwd, 'src');
    const from = layerOf(srcRoot, context.filename);
    if (from === undefined) return {};
    const check = (node) => {
      const spec = node.source?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const to = layerOf(srcRoot, join(dirname(context.filename), spec));
      if (to === undefined || to === from) return;
      const allowed = LAYERS[from];
      if (allowed === undefined) {
        context.report({ node, message: `src/${from} is not in the layer table (tools/eslint-rules.js): add it` });
      } else if (!allowed.includes(to)) {
        context.report({
          node,
          message: `layer '${from}' may not import '${to}' (allowed: ${allowed.join(', ') || 'nothing'}; DESIGN.md §3)`,
        });
      }
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

const TYPED_ARRAYS = /^(Float(16|32|64)|(Ui|I)nt(8|16|32)|Uint8Clamped|Big(Ui|I)nt64)Array$/;

/**
 * A type assertion (`x as T`, `<T>x`; not `as const`) needs a comment on its line or the line above saying why it holds.
 * One kind is exempt because its reason is always the same: `a[i] as number`, an element read of a typed array or a
 * number array, which noUncheckedIndexedAccess types `number | undefined` although the array holds numbers only (an index
 * out of bounds gives undefined, which the loop bounds of the codecs and kernels rule out; the tests check those bounds).
 */
const castNeedsComment = {
  meta: { type: 'suggestion', docs: { description: 'a cast carries a comment saying why it holds' }, schema: [] },
  create(context) {
    const source = context.sourceCode;
    const services = source.parserServices;
    const checker = services?.program?.getTypeChecker();
    const commented = (node) => {
      const line = node.loc.start.line;
      return source.getAllComments().some((c) => c.loc.end.line >= line - 1 && c.loc.start.line <= node.loc.end.line);
    };
    const isTypedArrayRead = (node) => {
      if (checker === undefined || node.typeAnnotation?.type !== 'TSNumberKeyword') return false;
      const e = node.expression;
      if (e.type !== 'MemberExpression' || !e.computed) return false;
      const type = checker.getTypeAtLocation(services.esTreeNodeToTSNodeMap.get(e.object));
      return TYPED_ARRAYS.test(type.getSymbol()?.getName() ?? '') || checker.isArrayType(type) || checker.isTupleType(type);
    };
    const check = (node) => {
      if (node.typeAnnotation?.type === 'TSTypeReference' && node.typeAnnotation.typeName?.name === 'const') return;
      if (isTypedArrayRead(node) || commented(node)) return;
      context.report({ node, message: 'a cast needs a comment on its line (or the line above) saying why it holds' });
    };
    return { TSAsExpression: check, TSTypeAssertion: check };
  },
};

export default { rules: { layers, 'cast-needs-comment': castNeedsComment } };
