"""
bench:features, the pandas side: the same point-in-time join as Flywheel's pointInTimeJoinSql, with
pandas.merge_asof on the very rows Flywheel has in Postgres. bench/features.ts starts it once with Debian's
/usr/bin/python3 (python3-pandas 1.5.3, numpy 1.24) and drives it over stdin/stdout, one JSON object a line.

Data (generated here with numpy from the row index, the formulas bench/features.ts runs in Postgres with
generate_series; not timed):
  hash(x, salt) = ((x * 1103515245 + salt) mod P * 2146121005 + 1013904223) mod P,  P = 2^31 - 1 (int64, no overflow)
  feature row i (0 <= i < feature_rows), K = keys, S = feature_rows / K slots per entity, DAY = 86,400,000 ms:
    e = i mod K, j = i div K; tie = 0 < j < S-1 and hash(i, 1) mod tie_every = 0; s = j-1 if tie else j
    entity_id  = 'e' + e zero-padded to 6 digits
    event_ts   = base + s*DAY + hash(e*S + s, 2) mod DAY                   (ms; a tied row repeats its predecessor's)
    created_ts = event_ts + (hash(i, 3) mod 1,800,000) * 2 + j mod 2        (tie partners never share it)
    f_int = hash(i, 4) mod 1e6, f_frac = (hash(i, 5) mod 1e6) / 1024, f_slot = j   (float64, exact sums)
  entity row k (0 <= k < entity_rows): e = hash(k, 6) mod K, m = hash(k, 7) mod 50, s = hash(k, 8) mod S,
    T = base + s*DAY + hash(e*S + s, 2) mod DAY;
    ts = T (m = 0: exactly on an event time), T + ttl (m = 1: exactly at the TTL boundary),
         else base - 2*DAY + hash(k, 9) mod ((S + 4) * DAY)
  Timestamps are datetime64[ns] (UTC, naive), entity ids Python str objects (what read_csv / read_parquet give).

Timed (time.perf_counter; process_time for CPU), per "run":
  sort_features  order = np.lexsort((created_ts, event_ts)); features.take(order): rows by (event_ts, created_ts),
                 so among rows with the same event_ts the latest created comes last and merge_asof takes it. This is
                 the fastest formulation found; the idiomatic features.sort_values(['event_ts', 'created_ts']) gives
                 the same order but factorises both keys (~5x slower in pandas 1.5): "idiomatic" times it once.
  sort_entities  entities.sort_values('ts')
  merge          pd.merge_asof(entities, features, left_on='ts', right_on='event_ts', by='entity_id',
                 direction='backward', allow_exact_matches=True, tolerance=ttl - 1 ns)
                 merge_asof's tolerance is inclusive (ts - event_ts <= tolerance); Flywheel's TTL is exclusive (a value
                 exactly ttl old has expired: event_ts > ts - ttl, offline and online), so the peer gets ttl - 1 ns.
  The result is a DataFrame of entity_rows rows in memory (Flywheel materialises its result as a table).
  Not timed: the checksums (rows, matched, nulls, sum f_int, sum f_frac, sum f_slot, sum f_int * (k mod 997 + 1)),
  and with "dump" the joined f_slot by entity row k (NaN: no value) as raw little-endian float64 for a row-level check.

Protocol: argv[1] = JSON {entity_rows, feature_rows, keys, base_ms, ttl_ms, tie_every}. Prints {"event": "ready", ...}
once the data is built, then answers each stdin line: {"op": "run", "dump": path?} -> timings + checksums;
{"op": "idiomatic"} -> the idiomatic sort's seconds; {"op": "quit"}.
"""
import gc
import json
import resource
import sys
import time

import numpy as np
import pandas as pd

P = 2147483647
DAY = 86_400_000


def h(x, salt):
    return ((x * 1103515245 + salt) % P * 2146121005 + 1013904223) % P


def build(spec):
    n_feature, n_entity, keys = spec['feature_rows'], spec['entity_rows'], spec['keys']
    slots = n_feature // keys
    base, ttl, tie_every = spec['base_ms'], spec['ttl_ms'], spec['tie_every']
    names = np.array([f'e{x:06d}' for x in range(keys)], dtype=object)

    i = np.arange(n_feature, dtype=np.int64)
    e = i % keys
    j = i // keys
    tie = (j > 0) & (j < slots - 1) & (h(i, 1) % tie_every == 0)
    s = np.where(tie, j - 1, j)
    event = base + s * DAY + h(e * slots + s, 2) % DAY
    created = event + (h(i, 3) % 1_800_000) * 2 + j % 2
    features = pd.DataFrame({
        'entity_id': names[e],
        'event_ts': pd.to_datetime(event, unit='ms'),
        'created_ts': pd.to_datetime(created, unit='ms'),
        'f_int': (h(i, 4) % 1_000_000).astype(np.float64),
        'f_frac': (h(i, 5) % 1_000_000).astype(np.float64) / 1024,
        'f_slot': j.astype(np.float64),
    })
    del i, e, j, tie, s, event, created

    k = np.arange(n_entity, dtype=np.int64)
    ek = h(k, 6) % keys
    m = h(k, 7) % 50
    sk = h(k, 8) % slots
    on_event = base + sk * DAY + h(ek * slots + sk, 2) % DAY
    ts = np.where(m == 0, on_event, np.where(m == 1, on_event + ttl, base - 2 * DAY + h(k, 9) % ((slots + 4) * DAY)))
    entities = pd.DataFrame({'k': k, 'entity_id': names[ek], 'ts': pd.to_datetime(ts, unit='ms')})
    return features, entities


def checksums(out):
    f_int = out['f_int']
    return {
        'rows': int(len(out)),
        'matched': int(f_int.notna().sum()),
        'nulls': int(f_int.isna().sum()),
        'sum_f_int': float(f_int.sum()),
        'sum_f_frac': float(out['f_frac'].sum()),
        'sum_f_slot': float(out['f_slot'].sum()),
        'weighted_f_int': float((f_int * (out['k'] % 997 + 1)).sum()),
    }


def main():
    spec = json.loads(sys.argv[1])
    tolerance = pd.Timedelta(milliseconds=spec['ttl_ms']) - pd.Timedelta(1, 'ns')
    started = time.perf_counter()
    features, entities = build(spec)
    gen_s = time.perf_counter() - started
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'event': 'ready', 'gen_s': gen_s, 'rss_mb': rss(), 'pandas': pd.__version__, 'numpy': np.__version__,
                      'python': sys.version.split()[0]}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command.get('op')
        if op == 'quit':
            break
        if op == 'idiomatic':
            gc.collect()
            t0 = time.perf_counter()
            by_sort = features.sort_values(['event_ts', 'created_ts'])
            seconds = time.perf_counter() - t0
            order = np.lexsort((features['created_ts'].to_numpy(), features['event_ts'].to_numpy()))
            same = bool((by_sort.index.to_numpy() == order).all())
            del by_sort, order
            print(json.dumps({'idiomatic_sort_s': seconds, 'same_order': same}), flush=True)
            continue
        if op != 'run':
            print(json.dumps({'error': f'unknown op {op!r}'}), flush=True)
            continue
        gc.collect()
        c0 = time.process_time()
        t0 = time.perf_counter()
        order = np.lexsort((features['created_ts'].to_numpy(), features['event_ts'].to_numpy()))
        right = features.take(order)
        t1 = time.perf_counter()
        left = entities.sort_values('ts')
        t2 = time.perf_counter()
        out = pd.merge_asof(left, right, left_on='ts', right_on='event_ts', by='entity_id', direction='backward',
                            tolerance=tolerance, allow_exact_matches=True)
        t3 = time.perf_counter()
        cpu = time.process_time() - c0
        result = {'sort_features_s': t1 - t0, 'sort_entities_s': t2 - t1, 'merge_s': t3 - t2, 'total_s': t3 - t0, 'cpu_s': cpu,
                  'checksums': checksums(out), 'rss_mb': rss()}
        if command.get('dump'):
            slots = np.full(len(entities), np.nan)
            slots[out['k'].to_numpy()] = out['f_slot'].to_numpy()
            slots.astype('<f8').tofile(command['dump'])
        del order, right, left, out
        print(json.dumps(result), flush=True)


main()
