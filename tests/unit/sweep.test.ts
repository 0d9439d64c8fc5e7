import { describe, expect, it } from 'vitest';
import { parsePipelineConfig } from '../../config/pipeline';
import {
  gridPoints,
  median,
  propose,
  randomPoint,
  tpePoint,
  type Observation,
  type SearchSpace,
} from '../../training/sweep';
import { seededRandom } from '../../ml/random';

const space: SearchSpace = {
  learningRate: { min: 1e-4, max: 1e-1, scale: 'log' },
  hiddenUnits: { values: [[16], [64, 32], [128, 64]] },
  batchSize: { min: 32, max: 512, integer: true },
};

describe('sweep samplers', () => {
  it('enumerates a grid in a stable order and refuses ranges', () => {
    expect(gridPoints({ a: { values: [1, 2] }, b: { values: ['x', 'y'] } })).toEqual([
      { a: 1, b: 'x' },
      { a: 1, b: 'y' },
      { a: 2, b: 'x' },
      { a: 2, b: 'y' },
    ]);
    expect(() => gridPoints({ a: { min: 0, max: 1 } })).toThrow(/grid search needs "values"/);
  });

  it('draws random points inside the domain, the same for the same seed and trial', () => {
    for (let i = 0; i < 50; i++) {
      const point = propose('random', space, i, 42, []);
      expect(point.learningRate).toBeGreaterThanOrEqual(1e-4);
      expect(point.learningRate).toBeLessThanOrEqual(1e-1);
      expect(Number.isInteger(point.batchSize)).toBe(true);
      expect(point).toEqual(propose('random', space, i, 42, []));
    }
    expect(propose('random', space, 1, 42, [])).not.toEqual(propose('random', space, 2, 42, []));
  });

  it('TPE proposes near the good region once it has seen results', () => {
    // Objective: distance of log10(lr) from -2 plus a penalty for the small network.
    const objective = (p: Record<string, unknown>) =>
      Math.abs(Math.log10(p.learningRate as number) + 2) + ((p.hiddenUnits as number[])[0] === 16 ? 1 : 0);
    const history: Observation[] = [];
    const random = seededRandom(3);
    for (let i = 0; i < 16; i++) {
      const params = randomPoint(space, random);
      history.push({ params, objective: objective(params) });
    }
    const tpe = Array.from({ length: 20 }, (_, i) => objective(tpePoint(space, history, seededRandom(100 + i))));
    const rand = Array.from({ length: 20 }, (_, i) => objective(randomPoint(space, seededRandom(100 + i))));
    expect(median(tpe)).toBeLessThan(median(rand) / 2);
  });

  it('validates a sweep in the pipeline config, naming the field', () => {
    const base = {
      name: 'p',
      model: 'm',
      data: { dataset: 'd', source: '/tmp/x.csv' },
      training: { task: 'regression', target: 'y', features: { numeric: ['x'] } },
    };
    const ok = parsePipelineConfig({
      ...base,
      training: { ...base.training, sweep: { parameters: { learningRate: { min: 0.001, max: 0.1, scale: 'log' } } } },
    });
    expect(ok.training.sweep).toMatchObject({ method: 'tpe', trials: 8, maxParallel: 2, maxFailed: 2 });
    expect(() =>
      parsePipelineConfig({
        ...base,
        training: { ...base.training, sweep: { parameters: { dropout: { values: [0.1] } } } },
      }),
    ).toThrow(/training\.sweep\.parameters\.dropout: cannot be swept/);
    expect(() =>
      parsePipelineConfig({
        ...base,
        training: { ...base.training, sweep: { parameters: { learningRate: { values: [0.01, -1] } } } },
      }),
    ).toThrow(/training\.sweep\.parameters\.learningRate\.values\.1/);
    expect(() =>
      parsePipelineConfig({
        ...base,
        training: {
          ...base.training,
          sweep: { method: 'grid', parameters: { learningRate: { min: 0.001, max: 0.1 } } },
        },
      }),
    ).toThrow(/grid search needs "values"/);
  });
});
