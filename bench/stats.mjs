// Summary statistics of one row's samples: median, quartiles and range.

/** The q-quantile (0..1) of sorted values, by linear interpolation between closest ranks. */
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low] + (sorted[high] - sorted[low]) * (position - low);
}

/** Median, quartiles, min and max of a list of numbers (rates: higher is better). */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    q1: quantile(sorted, 0.25),
    q3: quantile(sorted, 0.75),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** The median of per-repetition ratios a[i] / b[i] (pairs from the same repetition share its drift). */
export function pairedRatio(a, b) {
  const ratios = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (b[i] > 0) ratios.push(a[i] / b[i]);
  return summarize(ratios).median;
}
