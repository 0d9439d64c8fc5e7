/**
 * Small dependency-free SVG charts (lines, scatter, heatmap), stored as run artifacts (loss curves, evaluation plots).
 */

export interface Series {
  name: string;
  points: { x: number; y: number }[];
}

/** Axis ranges; any bound left out is taken from the data. */
export interface Domain {
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

export interface ChartOptions {
  /** Fixed axes, e.g. 0..1 for rates and probabilities. */
  domain?: Partial<Domain>;
  /** Dashed y = x reference line (ROC chance line, perfect calibration). */
  diagonal?: boolean;
  /** Dashed horizontal reference line at this y (e.g. 0 for residuals). */
  hline?: number;
  /** Dots on each point of a line series. */
  markers?: boolean;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const esc = (text: string) => text.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`);
const num = (v: number) => String(Number(v.toPrecision(4)));
const PAD = { left: 64, right: 16, top: 36, bottom: 44 };

type Point = { x: number; y: number };

/**
 * Data extent (Math.min/max semantics: a NaN x poisons the x range), with fixed bounds applied and a flat y range
 * widened.
 */
function domainOf(points: Point[], fixed: Partial<Domain> = {}): Domain {
  let minX = Infinity,
    maxX = -Infinity,
    minY = Infinity,
    maxY = -Infinity;
  for (const p of points) {
    minX = Math.min(minX, p.x);
    maxX = Math.max(maxX, p.x);
    minY = Math.min(minY, p.y);
    maxY = Math.max(maxY, p.y);
  }
  minX = fixed.minX ?? minX;
  maxX = fixed.maxX ?? maxX;
  minY = fixed.minY ?? minY;
  maxY = fixed.maxY ?? maxY;
  if (!(maxY > minY)) {
    minY -= 1;
    maxY += 1;
  }
  return { minX, maxX, minY, maxY };
}

/** The shared frame: opening tag, background, title, y grid with ticks, x axis with its end labels, axis labels. */
function frame(title: string, labels: { x: string; y: string }, d: Domain, width: number, height: number) {
  const { minX, maxX, minY, maxY } = d;
  const sx = (x: number) =>
    PAD.left + (maxX > minX ? ((x - minX) / (maxX - minX)) * (width - PAD.left - PAD.right) : 0);
  const sy = (y: number) => height - PAD.bottom - ((y - minY) / (maxY - minY)) * (height - PAD.top - PAD.bottom);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => minY + t * (maxY - minY));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    ...ticks.map(
      (t) =>
        `<line x1="${PAD.left}" x2="${width - PAD.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/><text x="${PAD.left - 6}" y="${sy(t) + 4}" text-anchor="end">${num(t)}</text>`,
    ),
    `<line x1="${PAD.left}" x2="${width - PAD.right}" y1="${height - PAD.bottom}" y2="${height - PAD.bottom}" stroke="#333"/>`,
    `<text x="${PAD.left}" y="${height - PAD.bottom + 16}" text-anchor="middle">${num(minX)}</text><text x="${width - PAD.right}" y="${height - PAD.bottom + 16}" text-anchor="end">${num(maxX)}</text>`,
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">${esc(labels.x)}</text>`,
    `<text x="14" y="${height / 2}" text-anchor="middle" transform="rotate(-90 14 ${height / 2})">${esc(labels.y)}</text>`,
  ];
  return { parts, sx, sy };
}

function referenceLines(
  options: ChartOptions,
  d: Domain,
  sx: (x: number) => number,
  sy: (y: number) => number,
): string[] {
  const out: string[] = [];
  const style = 'stroke="#999" stroke-dasharray="4 3"';
  if (options.diagonal) {
    const lo = Math.max(d.minX, d.minY),
      hi = Math.min(d.maxX, d.maxY);
    if (hi > lo)
      out.push(
        `<line x1="${sx(lo).toFixed(1)}" y1="${sy(lo).toFixed(1)}" x2="${sx(hi).toFixed(1)}" y2="${sy(hi).toFixed(1)}" ${style}/>`,
      );
  }
  const h = options.hline;
  if (h !== undefined && h >= d.minY && h <= d.maxY) {
    out.push(
      `<line x1="${PAD.left}" x2="${sx(d.maxX).toFixed(1)}" y1="${sy(h).toFixed(1)}" y2="${sy(h).toFixed(1)}" ${style}/>`,
    );
  }
  return out;
}

export function lineChartSvg(
  title: string,
  series: Series[],
  labels: { x: string; y: string },
  width = 640,
  height = 360,
  options: ChartOptions = {},
): string {
  const d = domainOf(
    series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y)),
    options.domain,
  );
  const { parts, sx, sy } = frame(title, labels, d, width, height);
  parts.push(...referenceLines(options, d, sx, sy));
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const points = s.points.filter((p) => Number.isFinite(p.y));
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${points.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`,
    );
    if (options.markers)
      parts.push(
        ...points.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${color}"/>`),
      );
    parts.push(
      `<text x="${width - PAD.right - 4}" y="${PAD.top + 14 * (i + 1)}" text-anchor="end" fill="${color}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * A scatter of (x, y) points; non-finite points are dropped, and beyond `maxPoints` an evenly strided,
 * deterministic subsample is drawn (the axes still span all points).
 */
export function scatterSvg(
  title: string,
  points: Point[],
  labels: { x: string; y: string },
  options: ChartOptions & { width?: number; height?: number; maxPoints?: number } = {},
): string {
  const { width = 640, height = 360, maxPoints = 5000 } = options;
  const finite = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
  const d = domainOf(finite, options.domain);
  const { parts, sx, sy } = frame(title, labels, d, width, height);
  parts.push(...referenceLines(options, d, sx, sy));
  const shown = stride(finite, maxPoints);
  parts.push(`<g fill="${COLORS[0]}" fill-opacity="0.5">`);
  for (const p of shown) parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2"/>`);
  parts.push('</g>');
  if (shown.length < finite.length) {
    parts.push(
      `<text x="${width - PAD.right - 4}" y="${PAD.top + 14}" text-anchor="end" fill="#666">${shown.length} of ${finite.length} points</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n');
}

/** At most `max` items, evenly spaced over the array (deterministic; keeps the first). */
export function stride<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return items.slice();
  return Array.from({ length: max }, (_, j) => items[Math.floor((j * items.length) / max)]!);
}

export interface HeatmapCell {
  /** Colour intensity in 0..1. */ shade: number;
  text: string;
}

/** A grid of shaded cells with their text, rows labelled on the left and columns along the bottom. */
export function heatmapSvg(
  title: string,
  rowLabels: string[],
  columnLabels: string[],
  cells: HeatmapCell[][],
  labels: { x: string; y: string },
): string {
  const rows = rowLabels.length,
    cols = columnLabels.length;
  const cell = Math.max(14, Math.min(64, Math.floor(480 / Math.max(rows, cols, 1))));
  const short = (s: string) => (s.length > 20 ? `${s.slice(0, 19)}…` : s);
  const longest = Math.max(1, ...rowLabels.map((s) => short(s).length), ...columnLabels.map((s) => short(s).length));
  const rotate = longest * 7 > cell;
  const left = 40 + Math.min(140, longest * 7);
  const top = 36,
    bottom = 36 + (rotate ? Math.min(140, longest * 6) : 16);
  const width = Math.max(320, left + cols * cell + 16),
    height = top + rows * cell + bottom;
  const fontSize = Math.max(8, Math.min(12, Math.floor(cell / 3)));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  cells.forEach((row, r) =>
    row.forEach((c, k) => {
      const t = Number.isFinite(c.shade) ? Math.max(0, Math.min(1, c.shade)) : 0;
      const x = left + k * cell,
        y = top + r * cell;
      parts.push(
        `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${shadeColor(t)}" stroke="#ddd"/>` +
          `<text x="${x + cell / 2}" y="${y + cell / 2 + fontSize / 3}" text-anchor="middle" font-size="${fontSize}" fill="${t > 0.5 ? 'white' : '#222'}">${esc(c.text)}</text>`,
      );
    }),
  );
  rowLabels.forEach((label, r) =>
    parts.push(
      `<text x="${left - 6}" y="${top + r * cell + cell / 2 + 4}" text-anchor="end">${esc(short(label))}</text>`,
    ),
  );
  columnLabels.forEach((label, k) => {
    const x = left + k * cell + cell / 2,
      y = top + rows * cell + 14;
    parts.push(
      rotate
        ? `<text x="${x}" y="${y}" text-anchor="end" transform="rotate(-45 ${x} ${y})">${esc(short(label))}</text>`
        : `<text x="${x}" y="${y}" text-anchor="middle">${esc(short(label))}</text>`,
    );
  });
  parts.push(`<text x="${left + (cols * cell) / 2}" y="${height - 8}" text-anchor="middle">${esc(labels.x)}</text>`);
  parts.push(
    `<text x="14" y="${top + (rows * cell) / 2}" text-anchor="middle" transform="rotate(-90 14 ${top + (rows * cell) / 2})">${esc(labels.y)}</text>`,
  );
  parts.push('</svg>');
  return parts.join('\n');
}

/** White to dark blue. */
function shadeColor(t: number): string {
  const channel = (from: number, to: number) =>
    Math.round(from + (to - from) * t)
      .toString(16)
      .padStart(2, '0');
  return `#${channel(255, 0x1f)}${channel(255, 0x4e)}${channel(255, 0x9c)}`;
}
