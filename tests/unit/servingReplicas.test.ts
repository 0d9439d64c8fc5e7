import { describe, expect, it } from 'vitest';
import {
  convergence,
  isLiveReplica,
  replicaLabel,
  REPLICA_MISSED_BEATS,
  type ServingReplica,
} from '../../store/servingReplicas';

const replica = (id: string, ageMs: number, loaded: Partial<ServingReplica> = {}): ServingReplica => ({
  id,
  alias: 'champion',
  url: `http://10.0.0.${id}:8471`,
  host: `serving-${id}`,
  pid: 100,
  models: {},
  routes: {},
  failed: {},
  beatMs: 1_000,
  startedAt: new Date(0),
  lastSeenAt: new Date(0),
  ageMs,
  ...loaded,
});

describe('serving replica liveness', () => {
  it('counts a replica live until it missed its third beat, by its own beat interval', () => {
    expect(REPLICA_MISSED_BEATS).toBe(3);
    expect(isLiveReplica({ ageMs: 0, beatMs: 1_000 })).toBe(true);
    expect(isLiveReplica({ ageMs: 3_000, beatMs: 1_000 })).toBe(true);
    expect(isLiveReplica({ ageMs: 3_001, beatMs: 1_000 })).toBe(false);
    // A slow-beating replica is judged by its own interval, not a global one.
    expect(isLiveReplica({ ageMs: 12_000, beatMs: 5_000 })).toBe(true);
    expect(isLiveReplica({ ageMs: 15_001, beatMs: 5_000 })).toBe(false);
  });
});

describe('replica convergence on a deploy', () => {
  const ready = (r: ServingReplica) => r.models.demand === 2;
  const refused = (r: ServingReplica) => r.failed.demand === 2;

  it('is complete when every live replica answers with the version, ignoring replicas gone quiet', () => {
    const state = convergence(
      [
        replica('1', 10, { models: { demand: 2 } }),
        replica('2', 900, { models: { demand: 2, churn: 4 } }),
        replica('3', 60_000, { models: { demand: 1 } }),
      ],
      { ready, refused },
    );
    expect(state.live).toBe(2);
    expect(state.ready.map((r) => r.id)).toEqual(['1', '2']);
    expect(state.lagging).toEqual([]);
  });

  it('names the lagging replicas, and which of them reported they cannot load it', () => {
    const state = convergence(
      [
        replica('1', 10, { models: { demand: 2 } }),
        replica('2', 10, { models: { demand: 1 } }),
        replica('3', 10, { models: { demand: 1 }, failed: { demand: 2 } }),
      ],
      { ready, refused },
    );
    expect(state.live).toBe(3);
    expect(state.lagging.map(replicaLabel)).toEqual(['http://10.0.0.2:8471', 'http://10.0.0.3:8471']);
    expect(state.refused.map((r) => r.id)).toEqual(['3']);
  });

  it('has nothing live when no replica reported recently: the caller falls back to the serving URL', () => {
    const state = convergence([replica('1', 10_000, { models: { demand: 2 } })], { ready, refused });
    expect(state).toEqual({ live: 0, ready: [], lagging: [], refused: [] });
  });

  it('waits for a rollout candidate only on the replicas that serve the model', () => {
    const state = convergence(
      [
        replica('1', 10, { models: { demand: 1 }, routes: { demand: 2 } }),
        replica('2', 10, { models: { churn: 4 } }),
        replica('3', 10, { models: { demand: 1 } }),
      ],
      { concerns: (r) => r.models.demand !== undefined, ready: (r) => r.routes.demand === 2 },
    );
    expect(state.live).toBe(2);
    expect(state.lagging.map((r) => r.id)).toEqual(['3']);
  });

  it('labels a replica without a URL by host and process id', () => {
    expect(replicaLabel({ url: null, host: 'serving-7', pid: 4242 })).toBe('serving-7:4242');
  });
});
