/**
 * Non-cryptographic string and number hashing: one definition for sticky traffic splits, seeds and sketches. Pure, so
 * workflows may import it.
 */

/** FNV-1a (32-bit) over the UTF-16 code units of `text`, as an unsigned integer. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** murmur3's final avalanche: every input bit flips each output bit with probability about one half. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** `text` as a number in [0, 1): the same key always lands on the same side of a split, and near keys spread evenly. */
export function unitHash(text: string): number {
  return fmix32(fnv1a(text)) / 0x1_0000_0000;
}
