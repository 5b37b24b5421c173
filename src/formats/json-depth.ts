/**
 * safetensors and aprender both parse their JSON with serde_json, whose default recursion limit fails a
 * document at its 128th level of nesting ("recursion limit exceeded"). JSON.parse has no such limit, and
 * what it builds from a deep nest costs far more than its text: a 100 MB safetensors header (the
 * format's own cap) of `[[[[…` is 50 million arrays, gigabytes of heap; and JSON.stringify of a few
 * thousand levels overflows the stack. So the readers refuse what serde_json refuses, before parsing.
 */
export const SERDE_JSON_RECURSION_LIMIT = 128;

/** Does `text` nest arrays/objects to serde_json's recursion limit? Linear, allocation-free; strings are skipped. */
export function exceedsJsonDepth(text: string, limit = SERDE_JSON_RECURSION_LIMIT): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth >= limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Is a parsed JSON value an object (not null, not an array)? A type guard, so readers index it without a cast. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
