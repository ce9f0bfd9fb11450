// Table, target checks and per-thread CPU summary for the benchmark.
const MiB = 1048576;

/**
 * Where a run's time went: the main thread and each busy thread of the tool's processes (CPU
 * seconds, share of the wall time, and how often /proc saw it Running / Sleeping / in Disk wait),
 * plus a per-second timeline of bytes the tool read (rchar: the pg_basebackup pipe for a backup)
 * and cores used by its process tree.
 */
export function threadSummary(threads, timeline, wallS) {
  if (!threads) return undefined;
  const pct = (x) => `${Math.round(x * 100)}%`;
  const stateMix = (st) => {
    const n = Object.values(st).reduce((a, b) => a + b, 0) || 1;
    return ['R', 'S', 'D']
      .filter((k) => st[k])
      .map((k) => `${k}${Math.round((st[k] / n) * 100)}`)
      .join('/');
  };
  const busy = threads
    .filter((t) => t.cpu >= 0.1 || t.main)
    .sort((a, b) => b.cpu - a.cpu)
    .slice(0, 10)
    .map((t) => `${t.procComm}${t.main ? '(main)' : `/${t.tid}`}: ${t.cpu.toFixed(2)} s = ${pct(t.cpu / wallS)} [${stateMix(t.states)}]`);
  let total = 0;
  for (const t of threads) total += t.cpu;
  const perSecond = [];
  if (timeline?.length > 1) {
    let last = timeline[0];
    for (const p of timeline.slice(1)) {
      if (p.t - last.t < 0.95 && p !== timeline[timeline.length - 1]) continue;
      const dt = p.t - last.t;
      const mib = p.rchar != null && last.rchar != null ? (p.rchar - last.rchar) / 1048576 / dt : NaN;
      perSecond.push(`${Math.round(mib)}MiB/s@${((p.treeCpu - last.treeCpu) / dt).toFixed(1)}c`);
      last = p;
    }
  }
  return {
    coresAvg: +(total / wallS).toFixed(2),
    busy,
    timeline: perSecond.join(' '),
  };
}

const ok = (r) => r && !r.failed;
const find = (results, tool, variant, op) => results.find((r) => r.tool === tool && r.variant === variant && r.op === op);

export function targetChecks(results) {
  const checks = [];
  const rookZstd = results.filter(
    (r) => ok(r) && r.tool === 'rookery' && r.op === 'backup' && (r.variant.startsWith('zstd') || r.variant === 'default config'),
  );
  const best = rookZstd.sort((a, b) => a.wallS - b.wallS)[0];
  const pgbbZ = find(results, 'pg_basebackup', 'server-zstd:level=3,workers=2', 'backup');
  const pbZ2 = find(results, 'pgbackrest', 'zst pmax=2', 'backup');
  const add = (name, value, limit, cmp, detail) => {
    const pass = value == null ? null : cmp === '<=' ? value <= limit : value >= limit;
    checks.push({ name, value: value == null ? null : +value.toFixed(3), limit, cmp, pass, detail });
  };
  const bestLabel = best ? `rookery ${best.variant} ${best.wallS.toFixed(2)} s` : 'no rookery zstd backup';
  add(
    'backup time vs pg_basebackup server-zstd:level=3,workers=2',
    best && ok(pgbbZ) ? best.wallS / pgbbZ.wallS : null,
    1.15,
    '<=',
    `${bestLabel} / ${ok(pgbbZ) ? `${pgbbZ.wallS.toFixed(2)} s` : 'n/a'}`,
  );
  add(
    'backup time vs pgBackRest zst process-max=2',
    best && ok(pbZ2) ? best.wallS / pbZ2.wallS : null,
    0.6,
    '<=',
    `${bestLabel} / ${ok(pbZ2) ? `${pbZ2.wallS.toFixed(2)} s` : 'n/a'}`,
  );
  const zRef = ok(pgbbZ) ? pgbbZ : ok(pbZ2) ? pbZ2 : null;
  add(
    'zstd-class ratio (best rookery zstd ratio / zstd reference ratio)',
    best && zRef ? ratio(best) / ratio(zRef) : null,
    0.9,
    '>=',
    best && zRef ? `${ratio(best).toFixed(2)}x vs ${zRef.tool} ${zRef.variant} ${ratio(zRef).toFixed(2)}x` : 'n/a',
  );
  const rookRestore = results
    .filter((r) => ok(r) && r.tool === 'rookery' && r.op === 'restore' && (r.variant.startsWith('zstd') || r.variant === 'default config'))
    .sort((a, b) => a.wallS - b.wallS)[0];
  const pbRestoreZ = find(results, 'pgbackrest', 'zst pmax=2', 'restore');
  add(
    'restore time vs pgBackRest zst process-max=2 restore',
    rookRestore && ok(pbRestoreZ) ? rookRestore.wallS / pbRestoreZ.wallS : null,
    0.85,
    '<=',
    `${rookRestore ? `rookery ${rookRestore.variant} ${rookRestore.wallS.toFixed(2)} s` : 'no rookery restore'} / ${ok(pbRestoreZ) ? `${pbRestoreZ.wallS.toFixed(2)} s` : 'n/a'}`,
  );
  const pbFastest = results.filter((r) => ok(r) && r.tool === 'pgbackrest' && r.op === 'restore').sort((a, b) => a.wallS - b.wallS)[0];
  if (pbFastest && pbFastest !== pbRestoreZ) {
    add(
      'restore time vs fastest pgBackRest restore',
      rookRestore ? rookRestore.wallS / pbFastest.wallS : null,
      0.85,
      '<=',
      `${rookRestore ? `${rookRestore.wallS.toFixed(2)} s` : 'n/a'} / pgbackrest ${pbFastest.variant} ${pbFastest.wallS.toFixed(2)} s`,
    );
  }
  const rook = results.filter((r) => ok(r) && r.tool === 'rookery');
  const peak = rook.length ? Math.max(...rook.map((r) => r.peakRssBytes)) : null;
  const worst = rook.find((r) => r.peakRssBytes === peak);
  add(
    'rookery peak RSS (MB = 10^6 bytes)',
    peak == null ? null : peak / 1e6,
    300,
    '<=',
    worst ? `${worst.variant} ${worst.op}: ${(peak / MiB).toFixed(0)} MiB` : 'n/a',
  );
  return checks;
}

function ratio(r) {
  return r.storedBytes ? r.dbBytes / r.storedBytes : NaN;
}

const pad = (s, n, right = false) => (right ? String(s).padStart(n) : String(s).padEnd(n));

export function printTable(meta, results, checks) {
  const lines = [];
  lines.push(
    `database: ${(meta.dbBytes / MiB).toFixed(0)} MiB (sum of pg_database_size; pgbench scale ${meta.scale} + mail ${(meta.mailBytes / MiB).toFixed(0)} MiB, ${meta.mailRows} rows)` +
      (meta.tarBytes ? `; uncompressed pg_basebackup tar ${(meta.tarBytes / MiB).toFixed(0)} MiB` : ''),
  );
  if (meta.tablespace) {
    const ts = meta.tablespace;
    lines.push(
      `tablespace ${ts.name} (oid ${ts.oid}) at ${ts.location}: ${(ts.bytes / MiB).toFixed(0)} MiB = ${(ts.share * 100).toFixed(1)} % of the database (${ts.relations})`,
    );
  }
  lines.push(
    `machine: ${meta.machine.nproc} cores (${meta.machine.cpu}), ${meta.machine.memGiB} GiB, ${meta.machine.postgres}, ${meta.machine.pgbackrest ?? 'no pgbackrest'}, node ${meta.machine.node}`,
  );
  lines.push('');
  const head = ['tool', 'variant', 'op', 'wall s', 'MiB/s', 'stored MiB', 'ratio', 'peak RSS MiB', 'tool CPU s', 'server CPU s', 'data'];
  const rows = [];
  for (const r of results) {
    if (r.failed) {
      rows.push([r.tool, r.variant, r.op, 'FAILED', '', '', '', '', '', '', '']);
      continue;
    }
    rows.push([
      r.tool,
      r.variant,
      r.op,
      r.wallS.toFixed(2),
      (r.dbBytes / MiB / r.wallS).toFixed(0),
      r.storedBytes == null ? '' : (r.storedBytes / MiB).toFixed(1),
      r.storedBytes == null ? '' : ratio(r).toFixed(2),
      (r.peakRssBytes / MiB).toFixed(0),
      r.cpuS.toFixed(1),
      r.serverCpuS == null ? '' : r.serverCpuS.toFixed(1),
      r.dataOk == null ? '' : r.dataOk ? 'ok' : 'MISMATCH',
    ]);
  }
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const fmt = (row) => `| ${row.map((c, i) => pad(c, w[i], i >= 3 && i < 10)).join(' | ')} |`;
  lines.push(fmt(head));
  lines.push(`|${w.map((n, i) => (i >= 3 && i < 10 ? `${'-'.repeat(n + 1)}:` : '-'.repeat(n + 2))).join('|')}|`);
  for (const row of rows) lines.push(fmt(row));
  lines.push('');
  lines.push('target checks:');
  for (const c of checks) {
    const verdict = c.pass == null ? 'n/a ' : c.pass ? 'PASS' : 'FAIL';
    lines.push(`  ${verdict}  ${c.name}: ${c.value ?? 'n/a'} (target ${c.cmp} ${c.limit}) — ${c.detail}`);
  }
  lines.push('');
  lines.push('details:');
  for (const r of results) {
    if (r.failed) {
      lines.push(`  ${r.tool} ${r.variant} ${r.op}: FAILED ${r.error.split('\n').slice(0, 6).join(' | ')}`);
      continue;
    }
    const bits = [];
    if (r.parts) bits.push(`parts ${JSON.stringify(r.parts)}`);
    if (r.runs && r.runs.length > 1) bits.push(`runs ${r.runs.map((x) => x.toFixed(2)).join('/')}`);
    bits.push(`procCPU ${JSON.stringify(r.procCpu)}`);
    if (r.serverDetail?.length) bits.push(`server ${r.serverDetail.map((d) => `${d.comm}:${d.cpu}`).join(',')}`);
    if (r.threads) {
      bits.push(`avg cores ${r.threads.coresAvg}; threads ${r.threads.busy.join(', ')}`);
      if (r.threads.timeline) bits.push(`per second (read rate @ cores): ${r.threads.timeline}`);
    }
    bits.push(`peak@ ${r.peakRssSample.join(',')}`);
    if (r.check) bits.push(r.check);
    lines.push(`  ${r.tool} ${r.variant} ${r.op}: ${bits.join('; ')}`);
  }
  lines.push(`total benchmark time ${meta.totalS.toFixed(0)} s`);
  console.log(lines.join('\n'));
}
