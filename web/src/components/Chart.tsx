// uPlot charts: lines (metric curves, drift over time) and bars (histograms); one canvas, fast at 100k points.
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export const PALETTE = [
  '#2563eb',
  '#dc2626',
  '#16a34a',
  '#9333ea',
  '#ea580c',
  '#0891b2',
  '#ca8a04',
  '#db2777',
  '#4b5563',
  '#65a30d',
];

export interface SeriesSpec {
  label: string;
  color?: string;
  dash?: number[];
  /** Draw as bars (histograms). */
  bars?: boolean;
  width?: number;
}

export interface ChartProps {
  /** [x, ...one array per series]; null is a gap. */
  data: (number | null)[][];
  series: SeriesSpec[];
  title?: string;
  height?: number;
  /** x holds epoch seconds. */
  time?: boolean;
  xLabel?: string;
  yLabel?: string;
  /** Tick labels for x (a categorical axis: x holds 0..n-1). */
  xTicks?: string[];
  /** performance.mark(`${mark}:drawn`) after the first draw (bench/ui.ts reads it). */
  mark?: string;
  testId?: string;
}

const barsPath = uPlot.paths.bars?.({ size: [0.9, 60] });

export function Chart({
  data,
  series,
  title,
  height = 260,
  time = false,
  xLabel,
  yLabel,
  xTicks,
  mark,
  testId,
}: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element) return;
    let marked = false;
    const options: uPlot.Options = {
      title,
      width: Math.max(200, element.clientWidth || 600),
      height,
      scales: {
        x: {
          time,
          // Bars are centred on their x: pad the range by half a bar so the first and last are not cut in half.
          ...(series.some((s) => s.bars)
            ? { range: (_u: uPlot, min: number, max: number) => barRange(data[0] ?? [], min, max) }
            : {}),
        },
      },
      legend: { show: series.length > 1 && series.length <= 12 },
      axes: [
        {
          label: xLabel,
          ...(xTicks
            ? {
                // As many labels as fit (about 8 px a character): every k-th category.
                splits: (u: uPlot) => {
                  const longest = Math.max(1, ...xTicks.map((t) => t.length)) + 2;
                  const every = Math.ceil(xTicks.length / Math.max(2, Math.floor(u.width / 8 / longest)));
                  return xTicks.map((_, i) => i).filter((i) => i % every === 0);
                },
                values: (_u: uPlot, splits: number[]) => splits.map((i) => xTicks[i] ?? ''),
              }
            : {}),
        },
        { label: yLabel },
      ],
      series: [
        { label: xLabel ?? 'x' },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? PALETTE[i % PALETTE.length],
          fill: s.bars ? `${s.color ?? PALETTE[i % PALETTE.length]}55` : undefined,
          width: s.width ?? (s.bars ? 1 : 1.5),
          dash: s.dash,
          paths: s.bars ? barsPath : undefined,
          points: { show: (data[0]?.length ?? 0) <= 60 && !s.bars },
          spanGaps: true,
        })),
      ],
      hooks: {
        draw: [
          () => {
            if (mark && !marked) {
              marked = true;
              // After the frame that shows the canvas has been painted.
              requestAnimationFrame(() => setTimeout(() => performance.mark(`${mark}:drawn`), 0));
            }
          },
        ],
      },
    };
    const plot = new uPlot(options, data as uPlot.AlignedData, element);
    const resize = new ResizeObserver(() => {
      const width = element.clientWidth;
      if (width && Math.abs(width - plot.width) > 4) plot.setSize({ width, height });
    });
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [data, series, title, height, time, xLabel, yLabel, xTicks, mark]);
  return <div className="chart" ref={box} data-testid={testId ?? 'chart'} />;
}

function barRange(xs: (number | null)[], min: number, max: number): [number, number] {
  const values = xs.filter((x): x is number => x !== null);
  const step = values.length > 1 ? (values[values.length - 1]! - values[0]!) / (values.length - 1) : 1;
  return [min - step / 2, max + step / 2];
}

/** Aligns several (x, y) series on the union of their x values, with null where a series has no point. */
export function alignSeries(series: { x: number[]; y: number[] }[]): (number | null)[][] {
  if (series.length === 1) return [series[0]!.x, series[0]!.y];
  const xs = [...new Set(series.flatMap((s) => s.x))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  return [
    xs,
    ...series.map((s) => {
      const ys: (number | null)[] = new Array(xs.length).fill(null);
      s.x.forEach((x, i) => (ys[index.get(x)!] = s.y[i]!));
      return ys;
    }),
  ];
}

/** Parallel coordinates on uPlot: one axis per dimension (x = 0..n-1), each line one trial scaled to [0, 1]. */
export function ParallelCoordinates({
  dimensions,
  rows,
  labels,
  testId,
}: {
  dimensions: string[];
  /** One row per trial: a value per dimension (categorical values are ranked). */
  rows: (number | string | undefined)[][];
  labels: string[];
  testId?: string;
}) {
  const scaled = dimensions.map((_, d) => {
    const column = rows.map((r) => r[d]);
    const numeric = column.every((v) => typeof v === 'number' || v === undefined);
    if (numeric) {
      const values = column.filter((v): v is number => typeof v === 'number');
      const min = Math.min(...values);
      const max = Math.max(...values);
      return column.map((v) => (typeof v === 'number' ? (max > min ? (v - min) / (max - min) : 0.5) : null));
    }
    const levels = [...new Set(column.map(String))].sort();
    return column.map((v) => (levels.length > 1 ? levels.indexOf(String(v)) / (levels.length - 1) : 0.5));
  });
  const data = [dimensions.map((_, i) => i), ...rows.map((_, r) => scaled.map((column) => column[r] ?? null))];
  return (
    <Chart
      testId={testId ?? 'parallel-coordinates'}
      data={data}
      series={labels.map((label) => ({ label }))}
      xTicks={dimensions}
      yLabel="scaled (min → max)"
      height={300}
    />
  );
}
