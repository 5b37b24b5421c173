import { UsageError } from '../errors.js';

export {
  MODEL_FORMATS,
  TARGET_IDS,
  TARGETS,
  type ModelFormat,
  type Target,
  type TargetFormat,
  type TargetId,
  type TargetProducer,
  type TargetSpec,
} from '../contracts/targets.js';
import { TARGET_IDS, TARGETS, type Target, type TargetId } from '../contracts/targets.js';

export function isTargetId(id: string): id is TargetId {
  return Object.hasOwn(TARGETS, id);
}

export function parseTarget(id: string): Target {
  if (!isTargetId(id)) throw new UsageError(`unknown target '${id}' (known: ${TARGET_IDS.join(', ')})`);
  return { ...TARGETS[id], id };
}

/** Every target, parsed. */
export function allTargets(): Target[] {
  return TARGET_IDS.map(parseTarget);
}
