// A profile's files: profile.json (what the planner reads), prefill.svg, decode.svg and
// report.html (both charts inline, the points as tables, the command that made them).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatNumber } from '@armature/bench';
import type { Profile } from '@armature/planner-core';
import { decodeSvg, prefillSvg } from './charts.js';

const escapeXml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}code,pre{background:#f6f6f6;padding:2px 4px}svg{max-width:100%;height:auto}`;

function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (v: string | number): string => escapeXml(typeof v === 'number' ? formatNumber(v) : v);
  return (
    `<table>\n<thead><tr>${headers.map((h) => `<th>${escapeXml(h)}</th>`).join('')}</tr></thead>\n<tbody>\n` +
    rows.map((r) => `<tr>${r.map((v) => `<td>${cell(v)}</td>`).join('')}</tr>`).join('\n') +
    '\n</tbody>\n</table>'
  );
}

/** The HTML report: both charts inline, the points, the engine settings and `commandLine`. */
export function renderProfileHtml(profile: Profile, commandLine: string): string {
  const title = `Armature profile: ${profile.model} on ${profile.engine}`;
  const prefill = table(
    ['ISL', 'TTFT, ms', 'prompt tokens/s'],
    profile.prefill.points.map((p) => [p.isl, p.ttftMs, p.tokensPerSecond]),
  );
  const decode = table(
    ['context', 'concurrency', 'KV usage', 'ITL, ms', 'output tokens/s'],
    profile.decode.points.map((p) => [p.context, p.concurrency, p.kvUsage, p.itlMs, p.tokensPerSecond]),
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(title)}</title><style>${STYLE}</style></head>
<body>
<h1>${escapeXml(title)}</h1>
<p>Source: <b>${profile.source}</b> (${profile.source === 'live' ? 'measured on a running worker' : "the mocker's timing in virtual time"}), ${escapeXml(profile.createdAt)}. KV capacity ${formatNumber(profile.decode.maxKvTokens)} tokens.</p>
<p>Command: <code>${escapeXml(commandLine)}</code></p>
${profile.engineArgs ? `<p>Engine settings: <code>${escapeXml(JSON.stringify(profile.engineArgs))}</code></p>` : ''}
<h2>Prefill: TTFT vs prompt length, batch 1, no prefix reuse</h2>
<figure>
${prefillSvg(profile)}</figure>
${prefill}
<h2>Decode: ITL and throughput vs concurrency, per context</h2>
<figure>
${decodeSvg(profile)}</figure>
${decode}
</body></html>
`;
}

const round = (value: number, digits: number): number => Number(value.toFixed(digits));

/** The profile with its measurements rounded to what they can tell (µs, 0.1 token/s, 1e-4 of KV). */
export function roundProfile(profile: Profile): Profile {
  return {
    ...profile,
    prefill: {
      points: profile.prefill.points.map((p) => ({
        isl: p.isl,
        ttftMs: round(p.ttftMs, 3),
        tokensPerSecond: round(p.tokensPerSecond, 1),
      })),
    },
    decode: {
      maxKvTokens: profile.decode.maxKvTokens,
      points: profile.decode.points.map((p) => ({
        context: p.context,
        concurrency: p.concurrency,
        kvUsage: round(p.kvUsage, 4),
        itlMs: round(p.itlMs, 3),
        tokensPerSecond: round(p.tokensPerSecond, 1),
      })),
    },
  };
}

export interface ProfileFiles {
  json: string;
  prefillSvg: string;
  decodeSvg: string;
  html: string;
}

/** Writes the profile's four files under `dir` (created if missing; the JSON rounded); returns their paths. */
export async function writeProfileFiles(dir: string, profile: Profile, commandLine: string): Promise<ProfileFiles> {
  await mkdir(dir, { recursive: true });
  const files: ProfileFiles = {
    json: join(dir, 'profile.json'),
    prefillSvg: join(dir, 'prefill.svg'),
    decodeSvg: join(dir, 'decode.svg'),
    html: join(dir, 'report.html'),
  };
  await writeFile(files.json, JSON.stringify(roundProfile(profile), null, 2) + '\n');
  await writeFile(files.prefillSvg, prefillSvg(profile));
  await writeFile(files.decodeSvg, decodeSvg(profile));
  await writeFile(files.html, renderProfileHtml(profile, commandLine));
  return files;
}
