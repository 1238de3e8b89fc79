// The slice of Prometheus's HTTP API the renderer needs: is it there, and one range query
// (/api/v1/query_range) as series of [unix seconds, value] points.
export interface Series {
  labels: Record<string, string>;
  /** [unix seconds, value]; NaN where Prometheus answered NaN or ±Inf (nothing to draw). */
  points: Array<[number, number]>;
}

export interface RangeQuery {
  expr: string;
  /** Unix seconds. */
  start: number;
  end: number;
  stepSeconds: number;
}

/** Prometheus could not be reached at all (nothing listens, wrong host, timeout). */
export class PrometheusUnreachableError extends Error {}

const TIMEOUT_MS = 15_000;

/** Checks that `baseUrl` answers as a Prometheus; throws PrometheusUnreachableError when it does not. */
export async function checkPrometheus(baseUrl: string): Promise<string> {
  const url = new URL('api/v1/status/buildinfo', withSlash(baseUrl));
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new PrometheusUnreachableError(
      `cannot reach Prometheus at ${baseUrl} (${why}): start one (armature up <graph> --prometheus) or pass --prometheus <url>`,
    );
  }
  if (!res.ok) {
    throw new PrometheusUnreachableError(`${url} answered HTTP ${res.status}: is ${baseUrl} a Prometheus?`);
  }
  const body = (await res.json()) as { data?: { version?: string } };
  return body.data?.version ?? 'unknown';
}

/** Runs one range query; a PromQL error is thrown with Prometheus's message. */
export async function queryRange(baseUrl: string, query: RangeQuery): Promise<Series[]> {
  const url = new URL('api/v1/query_range', withSlash(baseUrl));
  const form = new URLSearchParams({
    query: query.expr,
    start: String(query.start),
    end: String(query.end),
    step: `${query.stepSeconds}s`,
  });
  const res = await fetch(url, { method: 'POST', body: form, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = (await res.json().catch(() => ({}))) as {
    status?: string;
    error?: string;
    data?: { resultType?: string; result?: Array<{ metric: Record<string, string>; values: Array<[number, string]> }> };
  };
  if (!res.ok || body.status !== 'success') {
    throw new Error(body.error ?? `HTTP ${res.status}`);
  }
  if (body.data?.resultType !== 'matrix') throw new Error(`expected a matrix, got ${body.data?.resultType}`);
  return (body.data.result ?? []).map((r) => ({
    labels: r.metric,
    points: r.values.map(([t, v]) => [t, Number(v)] as [number, number]),
  }));
}

function withSlash(baseUrl: string): string {
  return baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
}
