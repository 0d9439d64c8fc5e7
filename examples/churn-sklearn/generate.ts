/**
 * The churn example's data: telecom customers with a contract, a plan and usage, and whether they left. Deterministic
 * for a seed. `npx tsx examples/churn-sklearn/generate.ts [rows] [file]` writes examples/churn-sklearn/data/churn.csv.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../../ml/random';

export interface ChurnOptions {
  rows: number;
  seed: number;
  /** Added to every customer's monthly charges: a price rise, to make the monitor's drift check fire. */
  priceShift?: number;
}

export function churnCsv({ rows, seed, priceShift = 0 }: ChurnOptions): string {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[], weights: readonly number[]): T => {
    let u = random() * weights.reduce((a, b) => a + b, 0);
    for (let i = 0; i < items.length; i++) if ((u -= weights[i]!) <= 0) return items[i]!;
    return items[items.length - 1]!;
  };
  const lines = ['customer_id,tenure_months,monthly_charges,support_calls,contract,internet,paperless,churned'];
  for (let i = 0; i < rows; i++) {
    const contract = pick(['month-to-month', 'one-year', 'two-year'], [0.55, 0.25, 0.2]);
    const internet = pick(['fiber', 'dsl', 'none'], [0.45, 0.35, 0.2]);
    const tenure = Math.floor(random() * (contract === 'two-year' ? 72 : contract === 'one-year' ? 48 : 30)) + 1;
    const base = internet === 'fiber' ? 80 : internet === 'dsl' ? 55 : 25;
    const charges = Math.round((base + random() * 30 + priceShift) * 100) / 100;
    const calls = Math.floor(-Math.log(1 - random()) * (contract === 'month-to-month' ? 2 : 1));
    const paperless = random() < 0.6 ? 1 : 0;
    const logit =
      -1.2 +
      (contract === 'month-to-month' ? 1.6 : contract === 'one-year' ? 0 : -1.5) +
      (internet === 'fiber' ? 0.5 : 0) -
      0.045 * tenure +
      0.02 * (charges - 60) +
      0.35 * calls +
      0.3 * paperless;
    const churned = random() < 1 / (1 + Math.exp(-logit)) ? 'yes' : 'no';
    lines.push(
      `C${String(i).padStart(6, '0')},${tenure},${charges},${calls},${contract},${internet},${paperless},${churned}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const rows = Number(process.argv[2] ?? 8000);
  const file = process.argv[3] ?? join(dirname(fileURLToPath(import.meta.url)), 'data', 'churn.csv');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, churnCsv({ rows, seed: 7 }));
  console.log(`wrote ${rows} customers to ${file}`);
}
