/**
 * The demo's data: a deterministic retail demand dataset — stores × items × days with weekly and yearly seasonality,
 * price elasticity, promotions and holidays: the seed story of Flywheel. Same options → byte-identical file.
 */
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { normal, seededRandom } from '../ml/random';

export interface DemandOptions {
  stores: number;
  items: number;
  days: number;
  seed: number;
  /** ISO date of day 0. */
  start: string;
  /** Multiplies the price column (a broken upstream feature calculation, e.g. ×100 for cents). */
  priceScale: number;
  /** Multiplies true demand (a genuine shift in the world). */
  demandScale: number;
}

export const DEFAULT_DEMAND: DemandOptions = {
  stores: 10,
  items: 20,
  days: 180,
  seed: 7,
  start: '2026-01-01',
  priceScale: 1,
  demandScale: 1,
};

const HOLIDAYS = new Set([
  '01-01',
  '02-14',
  '04-05',
  '05-25',
  '07-04',
  '09-07',
  '10-31',
  '11-26',
  '11-27',
  '12-24',
  '12-25',
  '12-31',
]);

/**
 * Writes the data set. `onRow` receives each row's true expected demand (the simulation's mean before noise), the
 * ceiling any model can reach; benchmarks use it as the oracle.
 */
export async function generateDemand(
  path: string,
  options: Partial<DemandOptions> = {},
  onRow?: (trueMean: number) => void,
): Promise<{ rows: number }> {
  const o = { ...DEFAULT_DEMAND, ...options };
  const random = seededRandom(o.seed);
  const storeFactor = Array.from({ length: o.stores }, () => 0.6 + random() * 0.9);
  const itemBase = Array.from({ length: o.items }, () => 8 + random() * 40);
  const itemPrice = Array.from({ length: o.items }, () => Math.round((2 + random() * 18) * 100) / 100);
  const itemElasticity = Array.from({ length: o.items }, () => 0.8 + random() * 1.4);
  await mkdir(dirname(path), { recursive: true });
  const out = createWriteStream(path);
  const write = (line: string) =>
    out.write(line) ? Promise.resolve() : new Promise<void>((resolve) => out.once('drain', () => resolve()));
  await write('date,store_id,item_id,day_of_week,month,is_holiday,promo,price,units_sold\n');
  const start = new Date(`${o.start}T00:00:00Z`).getTime();
  let rows = 0;
  for (let day = 0; day < o.days; day++) {
    const date = new Date(start + day * 86_400_000);
    const iso = date.toISOString().slice(0, 10);
    const dow = date.getUTCDay();
    const month = date.getUTCMonth() + 1;
    const holiday = HOLIDAYS.has(iso.slice(5)) ? 1 : 0;
    const weekly = dow === 0 || dow === 6 ? 1.35 : dow === 5 ? 1.15 : 1;
    const yearly = 1 + 0.25 * Math.sin((2 * Math.PI * (day + 80)) / 365);
    for (let s = 0; s < o.stores; s++) {
      for (let i = 0; i < o.items; i++) {
        const promo = random() < 0.12 ? 1 : 0;
        const discount = promo ? 0.75 + random() * 0.15 : 1;
        const price = itemPrice[i]! * discount * (0.97 + random() * 0.06);
        const mean =
          itemBase[i]! *
          storeFactor[s]! *
          weekly *
          yearly *
          (holiday ? 1.6 : 1) *
          (promo ? 1.3 : 1) *
          Math.pow(price / itemPrice[i]!, -itemElasticity[i]!) *
          o.demandScale;
        const units = Math.max(0, Math.round(mean + normal(random) * Math.sqrt(mean)));
        onRow?.(mean);
        await write(
          `${iso},S${String(s + 1).padStart(2, '0')},I${String(i + 1).padStart(3, '0')},${dow},${month},${holiday},${promo},${(price * o.priceScale).toFixed(2)},${units}\n`,
        );
        rows++;
      }
    }
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return { rows };
}
