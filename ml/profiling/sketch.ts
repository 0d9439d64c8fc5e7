/** Bounded-memory summaries for one-pass profiles: a HyperLogLog distinct counter and a reservoir sample. */
import { fmix32 } from '../hash';

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

export function hashNumber(value: number): number {
  f64[0] = value === 0 ? 0 : value; // -0 and 0 are one value
  return fmix32(u32[0]! ^ Math.imul(u32[1]!, 0x9e3779b1));
}

/** Mixes a 52-bit field key (see `RecordFields.key`) down to 32 well-spread bits. */
export function hashKey(key: number): number {
  return fmix32((key % 1048576) ^ Math.imul(Math.floor(key / 1048576), 0x9e3779b1));
}

/** HyperLogLog with 2^12 registers: about 1.6 % standard error, 4 KiB. */
export class HyperLogLog {
  private static readonly P = 12;
  private readonly registers = new Uint8Array(1 << HyperLogLog.P);

  add(hash: number): void {
    const index = hash >>> (32 - HyperLogLog.P);
    const rest = (hash << HyperLogLog.P) | (1 << (HyperLogLog.P - 1));
    const rank = Math.clz32(rest) + 1;
    if (rank > this.registers[index]!) this.registers[index] = rank;
  }

  estimate(): number {
    const m = this.registers.length;
    let sum = 0,
      zeros = 0;
    for (let i = 0; i < m; i++) {
      sum += 2 ** -this.registers[i]!;
      if (this.registers[i] === 0) zeros++;
    }
    const raw = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
    if (raw <= 2.5 * m && zeros > 0) return Math.round(m * Math.log(m / zeros));
    return Math.round(raw);
  }
}

/** Uniform sample of a stream (Li's algorithm L: a random draw only for the items it keeps). */
export class Reservoir {
  readonly values: number[] = [];
  /** Items to pass over before the next one is kept. */
  private skip = 0;
  private w = 1;

  constructor(
    readonly size: number,
    private readonly random: () => number,
  ) {}

  add(value: number): void {
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    this.keep(value);
  }

  private keep(value: number): void {
    if (this.values.length < this.size) {
      this.values.push(value);
      if (this.values.length < this.size) return;
    } else this.values[Math.floor(this.random() * this.size)] = value;
    this.w *= Math.exp(Math.log(this.random()) / this.size);
    this.skip = Math.floor(Math.log(this.random()) / Math.log(1 - this.w));
  }
}
