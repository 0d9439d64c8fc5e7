/**
 * Hyper-parameter search spaces and samplers: grid, random, and TPE (tree-structured Parzen estimator, as in
 * Hyperopt / Optuna). Pure and seeded, so a sweep workflow proposes the same trials when Temporal replays it.
 */
import { normal, seededRandom } from '../ml/random';

export type Value = number | string | number[];
export type Domain = { values: Value[] } | { min: number; max: number; scale?: 'linear' | 'log'; integer?: boolean };
export type SearchSpace = Record<string, Domain>;
export type Point = Record<string, Value>;

export interface Observation {
  params: Point;
  objective: number;
}

const isRange = (d: Domain): d is Extract<Domain, { min: number }> => 'min' in d;

export function median(values: number[]): number {
  const sorted = values.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Every combination of the listed values, in a stable order. A range has no grid: list values instead. */
export function gridPoints(space: SearchSpace): Point[] {
  let points: Point[] = [{}];
  for (const [name, domain] of Object.entries(space)) {
    if (isRange(domain)) throw new Error(`sweep.parameters.${name}: grid search needs "values", not a range`);
    points = points.flatMap((point) => domain.values.map((value) => ({ ...point, [name]: value })));
  }
  return points;
}

function toUnit(domain: Extract<Domain, { min: number }>, value: number): number {
  return domain.scale === 'log' ? Math.log(value) : value;
}

function fromUnit(domain: Extract<Domain, { min: number }>, u: number): number {
  const lo = toUnit(domain, domain.min),
    hi = toUnit(domain, domain.max);
  const clipped = Math.min(hi, Math.max(lo, u));
  const value = domain.scale === 'log' ? Math.exp(clipped) : clipped;
  return domain.integer ? Math.round(value) : value;
}

export function randomPoint(space: SearchSpace, random: () => number): Point {
  const point: Point = {};
  for (const [name, domain] of Object.entries(space)) {
    if (isRange(domain))
      point[name] = fromUnit(
        domain,
        toUnit(domain, domain.min) + random() * (toUnit(domain, domain.max) - toUnit(domain, domain.min)),
      );
    else point[name] = domain.values[Math.floor(random() * domain.values.length)]!;
  }
  return point;
}

/**
 * TPE: split the observations into the best γ share ("good") and the rest; per parameter, draw candidates from a
 * Parzen density around the good values and keep the one that maximises l(x) / g(x). Random until `startup`
 * observations exist.
 */
export function tpePoint(
  space: SearchSpace,
  history: Observation[],
  random: () => number,
  options: { gamma?: number; candidates?: number; startup?: number } = {},
): Point {
  const finite = history.filter((h) => Number.isFinite(h.objective));
  if (finite.length < (options.startup ?? 3)) return randomPoint(space, random);
  const sorted = finite.slice().sort((a, b) => a.objective - b.objective);
  const nGood = Math.max(1, Math.ceil((options.gamma ?? 0.25) * sorted.length));
  const good = sorted.slice(0, nGood),
    bad = sorted.slice(nGood);
  const point: Point = {};
  for (const [name, domain] of Object.entries(space)) {
    if (isRange(domain)) {
      const lo = toUnit(domain, domain.min),
        hi = toUnit(domain, domain.max);
      const goodU = good.map((g) => toUnit(domain, g.params[name] as number));
      const badU = bad.map((b) => toUnit(domain, b.params[name] as number));
      // Scott's rule on each group's spread, floored so a tight group still explores a little.
      const width = (values: number[]) => {
        if (values.length < 2) return (hi - lo) / 4;
        const mean = values.reduce((a, v) => a + v, 0) / values.length;
        const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1));
        return Math.min(hi - lo, Math.max(1.06 * std * Math.pow(values.length, -0.2), (hi - lo) / 20));
      };
      const density = (x: number, centers: number[]) => {
        const sigma = width(centers);
        // A uniform prior mixed in keeps unexplored regions possible.
        let sum = 1 / (hi - lo || 1);
        for (const c of centers) sum += Math.exp(-0.5 * ((x - c) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI));
        return sum / (centers.length + 1);
      };
      let best = NaN,
        bestScore = -Infinity;
      for (let k = 0; k < (options.candidates ?? 24); k++) {
        const center = goodU[Math.floor(random() * goodU.length)]!;
        const x = Math.min(hi, Math.max(lo, center + normal(random) * width(goodU)));
        const score = density(x, goodU) / density(x, badU);
        if (score > bestScore) {
          bestScore = score;
          best = x;
        }
      }
      point[name] = fromUnit(domain, best);
    } else {
      const keys = domain.values.map((v) => JSON.stringify(v));
      const weights = (group: Observation[]) =>
        keys.map(
          (key) =>
            (group.filter((o) => JSON.stringify(o.params[name]) === key).length + 1) / (group.length + keys.length),
        );
      const l = weights(good),
        g = weights(bad);
      let best = 0,
        bestScore = -Infinity;
      for (let k = 0; k < (options.candidates ?? 24); k++) {
        let r = random(),
          i = 0;
        while (i < l.length - 1 && (r -= l[i]!) > 0) i++;
        const score = l[i]! / g[i]!;
        if (score > bestScore) {
          bestScore = score;
          best = i;
        }
      }
      point[name] = domain.values[best]!;
    }
  }
  return point;
}

/** The proposal for trial `index`: seeded by the sweep seed and the index, so a replay proposes the same. */
export function propose(
  method: 'grid' | 'random' | 'tpe',
  space: SearchSpace,
  index: number,
  seed: number,
  history: Observation[],
  startup?: number,
): Point {
  if (method === 'grid') return gridPoints(space)[index]!;
  const random = seededRandom(seed * 1_000_003 + index * 7919 + 1);
  return method === 'random' ? randomPoint(space, random) : tpePoint(space, history, random, { startup });
}
