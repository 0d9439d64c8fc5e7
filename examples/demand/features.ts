/**
 * Feature views over the demo's retail demand data: `npx flywheel features apply examples/demand/features.ts`, then
 * `npx flywheel features materialize store_item_prices` and `npx flywheel features get store_item_prices store_id=S01
 * item_id=I001`.
 */
import { defineFeatureView } from '../../features/define';

/** The shelf price and promotion of each store × item, per day, from the validated dataset (`latest` alias). */
export const storeItemPrices = defineFeatureView({
  name: 'store_item_prices',
  description: 'daily shelf price and promotion flag per store and item',
  entities: ['store_id', 'item_id'],
  timestamp: 'date',
  ttl: '2d',
  source: { dataset: 'retail-demand@latest' },
  features: { price: 'number', promo: 'integer' },
  transforms: { discounted: { expression: "CASE WHEN promo = 1 THEN 'yes' ELSE 'no' END", type: 'string' } },
});
