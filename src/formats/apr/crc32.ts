/**
 * CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, init and xorout 0xFFFFFFFF), the checksum APR v2
 * uses for its header and footer (aprender `crc32`). Own table instead of `zlib.crc32`, which Node
 * only has from 20.15.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32 of `bytes`. Chains like zlib's: `crc32(b, crc32(a))` is the CRC of a followed by b, so a large
 * region can be checksummed in windows.
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  let c = ~previous >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
