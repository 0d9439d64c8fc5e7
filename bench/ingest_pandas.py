"""
bench:ingest, the pandas side: `pd.read_csv(path)` + `df.describe(include='all')` on the CSV that Flywheel ingests,
in a fresh interpreter per run so that its peak RSS belongs to that run alone. bench/ingest.ts starts it with
Debian's /usr/bin/python3 (python3-pandas 1.5).

describe(include='all') is the peer of Flywheel's profile: it covers the numeric columns (count, mean, std, min,
quartiles, max) and the text columns (count, unique, top, freq), as Flywheel profiles every column. It costs little
more than the default describe(), which would skip the three text columns; the second argument "default" measures
that instead, for comparison.

Usage: ingest_pandas.py <csv path> [all|default]
Prints one JSON object: seconds (read_csv + describe, the timed part), read_seconds, describe_seconds, rows, columns,
peak_rss_kb (ru_maxrss of this process, KiB, interpreter and pandas included), baseline_rss_kb (after import pandas,
before read_csv), pandas version.
"""
import json
import resource
import sys
import time

import pandas as pd


def current_rss_kb() -> int:
    try:
        with open('/proc/self/statm') as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() // 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    path = sys.argv[1]
    mode = sys.argv[2] if len(sys.argv) > 2 else 'all'
    if mode not in ('all', 'default'):
        raise SystemExit(f'describe mode must be "all" or "default", not {mode!r}')
    baseline = current_rss_kb()
    started = time.perf_counter()
    df = pd.read_csv(path)
    read_done = time.perf_counter()
    summary = df.describe(include='all') if mode == 'all' else df.describe()
    finished = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        'seconds': finished - started,
        'read_seconds': read_done - started,
        'describe_seconds': finished - read_done,
        'rows': int(len(df)),
        'columns': int(df.shape[1]),
        'described_columns': int(summary.shape[1]),
        'describe': mode,
        'peak_rss_kb': int(peak),
        'baseline_rss_kb': int(baseline),
        'pandas': pd.__version__,
    }))


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
