import { readFileSync } from 'node:fs';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  /** Fraction of the sampled non-idle time. */
  share: number;
}

export interface ProfileSummary {
  /** Sampled non-idle time, in milliseconds. */
  totalMs: number;
  /** Self time grouped by package (`node_modules/<name>`), Gatehouse folder, Node internals or V8. */
  byLocation: ProfileRow[];
  byFunction: Array<ProfileRow & { location: string }>;
}

/**
 * Reads a V8 `.cpuprofile` (as written by `node --cpu-prof`) and sums self time per function and per
 * location, so a run can say where the gateway's CPU goes without opening a profiler.
 */
export function summarizeProfile(path: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });

  const locations = new Map<string, number>();
  const functions = new Map<string, { location: string; micros: number }>();
  let total = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined || frame.functionName === '(idle)') continue;
    total += micros;
    const location = locate(frame.url, frame.functionName);
    locations.set(location, (locations.get(location) ?? 0) + micros);
    const name = `${frame.functionName || '(anonymous)'}`;
    const key = `${name}@${frame.url}:${frame.lineNumber}`;
    const entry = functions.get(key) ?? {
      location: `${location}${where(frame.url, frame.lineNumber)}`,
      micros: 0,
    };
    entry.micros += micros;
    functions.set(key, entry);
  }
  const row = (name: string, micros: number): ProfileRow => ({
    name,
    ms: micros / 1000,
    share: total > 0 ? micros / total : 0,
  });
  return {
    totalMs: total / 1000,
    byLocation: [...locations].map(([name, micros]) => row(name, micros)).sort((a, b) => b.ms - a.ms),
    byFunction: [...functions]
      .map(([key, { location, micros }]) => ({ ...row(key.slice(0, key.indexOf('@')), micros), location }))
      .sort((a, b) => b.ms - a.ms),
  };
}

function locate(url: string, functionName: string): string {
  if (url === '') return functionName.startsWith('(') ? functionName : '(V8 / native)';
  const inModules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (inModules?.[1] !== undefined) return inModules[1];
  const inSource = /\/(src|bench)\/([^/]+)\//.exec(url);
  if (inSource !== undefined && inSource !== null) return `gatehouse ${inSource[1]}/${inSource[2]}`;
  if (url.startsWith('node:')) return 'node internals';
  return url;
}

function where(url: string, lineNumber: number): string {
  const file = url.split('/').at(-1);
  return file === undefined || file === '' ? '' : ` (${file}:${lineNumber + 1})`;
}
