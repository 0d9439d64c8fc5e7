"""
bench:drift, the scipy side: PSI (equal-mass quantile bins of the reference) and the two-sample Kolmogorov-Smirnov
test per column, with numpy + scipy, on the very arrays Flywheel's side gets. bench/drift.ts starts it with Debian's
/usr/bin/python3 (python3-scipy, python3-numpy), a fresh interpreter per run.

Input: <data dir> written by bench/drift.ts: meta.json ({"rows", "bins", "columns": [{"name", "file"}]}) and per
column <file>_ref.f64 and <file>_cur.f64, raw little-endian float64 (np.fromfile(..., dtype='<f8')).

Per column, what ml/quality/drift.ts computes:
  edges    the order statistics sorted(ref)[floor(i * n / bins)], i = 1 .. bins-1, duplicates dropped (np.unique) -
           binReference's definition exactly. np.partition at those indices (what np.quantile does inside); for n a
           multiple of bins this is np.quantile(ref, i / bins, method='higher'). np.quantile's default ('linear')
           would interpolate between neighbours: --linear-edges reports, untimed, how much that changes PSI.
  counts   bin i holds [edges[i-1], edges[i]), the outer bins open: np.searchsorted(edges, x, side='right') +
           np.bincount, for the reference (its shares) and the current sample. (np.histogram gives the same counts
           with edges [-inf, *edges, inf] but sorts blocks of the data and is ~3x slower, so it is not the one timed.)
  psi      sum over bins of (a - e) * ln(a / e) with e = max(ref share, 1e-4), a = max(current share, 1e-4) - the
           epsilon smoothing of psiFromCounts.
  ks       scipy.stats.ks_2samp(ref, cur, method='asymp'): D, and the asymptotic p-value. scipy's asymptotic p is
           kstwo.sf(D, round(n*m/(n+m))) (the one-sample Kolmogorov distribution at the effective n); Flywheel's
           ksTest uses the limiting Kolmogorov distribution with Stephens' correction, Q((sqrt(en) + 0.12 +
           0.11/sqrt(en)) D). Both are asymptotic; they differ slightly, D does not.

Timed (time.perf_counter): everything from "have the arrays" to "have PSI + KS for all columns" (reading the files
is not). Prints one JSON object: seconds, edges_seconds, psi_seconds, ks_seconds (the phases summed over columns),
per-column results (edges, psi, ks_statistic, ks_pvalue), versions; with --linear-edges also psi_linear_edges.

Usage: drift_scipy.py <data dir> [--linear-edges]
"""
import json
import os
import sys
import time

import numpy as np
import scipy
from scipy import stats

EPSILON = 1e-4


def psi_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    expected = np.maximum(ref_counts / ref_counts.sum(), EPSILON)
    actual = np.maximum(cur_counts / cur_counts.sum(), EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def bin_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side='right'), minlength=edges.size + 1)


def main() -> None:
    data_dir = sys.argv[1]
    linear_check = '--linear-edges' in sys.argv[2:]
    with open(os.path.join(data_dir, 'meta.json')) as f:
        meta = json.load(f)
    bins = int(meta['bins'])
    columns = meta['columns']
    refs = [np.fromfile(os.path.join(data_dir, f"{c['file']}_ref.f64"), dtype='<f8') for c in columns]
    curs = [np.fromfile(os.path.join(data_dir, f"{c['file']}_cur.f64"), dtype='<f8') for c in columns]

    results = []
    edges_s = psi_s = ks_s = 0.0
    started = time.perf_counter()
    for ref, cur in zip(refs, curs):
        t0 = time.perf_counter()
        n = ref.shape[0]
        kth = (np.arange(1, bins) * n) // bins
        edges = np.unique(np.partition(ref, kth)[kth])
        t1 = time.perf_counter()
        psi = psi_from_counts(bin_counts(ref, edges), bin_counts(cur, edges))
        t2 = time.perf_counter()
        ks = stats.ks_2samp(ref, cur, method='asymp')
        t3 = time.perf_counter()
        edges_s += t1 - t0
        psi_s += t2 - t1
        ks_s += t3 - t2
        results.append({'edges': edges.tolist(), 'psi': psi, 'ks_statistic': float(ks.statistic), 'ks_pvalue': float(ks.pvalue)})
    seconds = time.perf_counter() - started

    out = {
        'seconds': seconds,
        'edges_seconds': edges_s,
        'psi_seconds': psi_s,
        'ks_seconds': ks_s,
        'columns': results,
        'rows': int(refs[0].shape[0]) if refs else 0,
        'numpy_version': np.__version__,
        'scipy_version': scipy.__version__,
    }
    if linear_check:
        # Not timed: PSI with np.quantile's default (linear interpolation) edges, to show what the edge definition is worth.
        probs = np.arange(1, bins) / bins
        linear = []
        for ref, cur in zip(refs, curs):
            edges = np.unique(np.quantile(ref, probs))
            linear.append(psi_from_counts(bin_counts(ref, edges), bin_counts(cur, edges)))
        out['psi_linear_edges'] = linear
    print(json.dumps(out))


if __name__ == '__main__':
    main()
