// Benchmark data: pgbench -i at a given scale, plus a table of realistic email-like text
// (subjects, bodies, addresses, JSON metadata) generated server-side with generate_series.
import { PGBIN, psql } from './cluster.mjs';
import { sh } from './proc.mjs';

const WORDS = `the be to of and a in that have I it for not on with he as you do at this but his by from
they we say her she or an will my one all would there their what so up out if about who get which go me
when make can like time no just him know take people into year your good some could them see other than
then now look only come its over think also back after use two how our work first well way even new want
because any these give day most us meeting project update review deadline budget quarter report customer
invoice shipment order account password reset schedule call team release feature bug fix deploy server
database backup restore migration latency outage incident postmortem roadmap hiring offer contract legal
please thanks regards attached document spreadsheet draft final version comments feedback approval
tomorrow today monday tuesday wednesday thursday friday weekend morning afternoon evening week month
office remote travel flight hotel conference agenda minutes notes action items follow discussed agreed
pricing discount renewal subscription trial support ticket escalation priority urgent blocked pending
resolved closed opened assigned owner manager director engineer analyst designer sales marketing finance
payroll benefits vacation holiday policy compliance audit security access permission token certificate
expired renewal vendor partner integration api endpoint request response error timeout retry queue
cluster node disk memory cpu network storage bucket region replica primary standby failover snapshot`
  .split(/\s+/)
  .filter(Boolean);
const FIRST =
  'james mary robert patricia john jennifer michael linda david elizabeth william barbara richard susan joseph jessica thomas sarah charles karen chris nancy daniel lisa matthew betty anthony sandra mark ashley donald kimberly steven emily paul donna andrew michelle joshua carol kenneth amanda kevin melissa brian deborah george stephanie timothy rebecca ronald sharon jason laura'.split(
    ' ',
  );
const LAST =
  'smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts'.split(
    ' ',
  );
const DOMAINS =
  'example.com acme.io globex.net initech.org umbrella.co hooli.com stark-industries.com wayne-enterprises.com gmail.com outlook.com yahoo.com fastmail.fm proton.me'.split(
    ' ',
  );
const LABELS = 'inbox work personal finance travel receipts newsletters social promotions important starred archive'.split(' ');

const pick = (col, xs) => `v.${col}[1 + floor(random() * ${xs.length})::int]`;
// inside aggregate subqueries the index must mention the local s, or the aggregate binds to the outer query
const pickS = (col, xs) => `v.${col}[1 + s * 0 + floor(random() * ${xs.length})::int]`;
const arr = (xs) => `ARRAY[${xs.map((x) => `'${x.replace(/'/g, "''")}'`).join(',')}]`;

function insertBatchSql(rows, startId) {
  // A lateral subquery that references g is re-evaluated per row; random() makes each row differ.
  return `
WITH v AS (SELECT ${arr(WORDS)} AS w, ${arr(FIRST)} AS f, ${arr(LAST)} AS l, ${arr(DOMAINS)} AS d, ${arr(LABELS)} AS lb)
INSERT INTO mail (id, thread_id, sent_at, sender, recipients, subject, body, meta)
SELECT g,
       g / 7,
       timestamptz '2021-01-01' + (g * interval '37 seconds') + random() * interval '30 seconds',
       ${pick('f', FIRST)} || '.' || ${pick('l', LAST)} || '@' || ${pick('d', DOMAINS)},
       (SELECT string_agg(${pickS('f', FIRST)} || '.' || ${pick('l', LAST)} || '@' || ${pick('d', DOMAINS)}, ', ')
          FROM generate_series(1, 1 + (g % 4)) s),
       CASE WHEN g % 3 = 0 THEN 'Re: ' ELSE '' END ||
       initcap((SELECT string_agg(${pickS('w', WORDS)}, ' ') FROM generate_series(1, 3 + (g % 6)) s)),
       (SELECT 'Hi ' || initcap(${pick('f', FIRST)}) || E',\\n\\n' ||
               string_agg(${pickS('w', WORDS)} ||
                          CASE WHEN random() < 0.08 THEN E'.\\n' WHEN random() < 0.06 THEN ',' ELSE '' END, ' ') ||
               E'\\n\\nThanks,\\n' || initcap(${pick('f', FIRST)})
          FROM generate_series(1, 40 + ((g * 7919) % 360)) s),
       jsonb_build_object(
         'labels', jsonb_build_array(${pick('lb', LABELS)}, ${pick('lb', LABELS)}),
         'spam_score', round((random() * 10)::numeric, 2),
         'size', 1000 + (random() * 90000)::int,
         'has_attachments', random() < 0.2,
         'client', (ARRAY['thunderbird','outlook','apple-mail','gmail-web','k9'])[1 + (random() * 4)::int],
         'message_id', '<' || md5(g::text) || '@' || ${pick('d', DOMAINS)} || '>')
  FROM generate_series(${startId}, ${startId + rows - 1}) g, v`;
}

/** pgbench -i -s scale, then the mail table up to textMb MiB (pg_total_relation_size). */
export function loadData(cluster, { scale, textMb, log = () => undefined }) {
  const t0 = Date.now();
  if (scale > 0) {
    sh(`${PGBIN}/pgbench`, [
      '-i',
      '-q',
      '-s',
      String(scale),
      '-h',
      cluster.conn.host,
      '-p',
      String(cluster.port),
      '-U',
      'postgres',
      'postgres',
    ]);
    log(`pgbench -i -s ${scale}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const t1 = Date.now();
  psql(
    cluster.conn,
    `CREATE TABLE mail (id bigint PRIMARY KEY, thread_id bigint, sent_at timestamptz, sender text, recipients text, subject text, body text, meta jsonb)`,
  );
  const target = textMb * 1048576;
  let next = 1;
  let batch = 5000;
  for (;;) {
    const size = Number(psql(cluster.conn, `SELECT pg_total_relation_size('mail')`));
    if (size >= target) break;
    if (next > 1) {
      const perRow = size / (next - 1);
      batch = Math.max(1000, Math.min(200000, Math.ceil((target - size) / perRow) + 10));
    }
    psql(cluster.conn, insertBatchSql(batch, next));
    next += batch;
  }
  psql(cluster.conn, 'VACUUM ANALYZE mail');
  psql(cluster.conn, 'CHECKPOINT');
  log(`mail table: ${next - 1} rows, ${((Date.now() - t1) / 1000).toFixed(1)} s`);
  return { mailRows: next - 1 };
}

/** The user tablespace of the --tablespace variant. */
export const TABLESPACE = 'bench_ts';

/**
 * The --tablespace variant: a user tablespace at location (outside the data directory) holding
 * the mail table (heap and TOAST) with its primary key, and pgbench_accounts' primary key — about
 * a third of the default data set, as an operator puts big tables and an index on another disk.
 * Returns what it moved and how many bytes the tablespace holds.
 */
export function moveToTablespace(cluster, location, { log = () => undefined } = {}) {
  const t0 = Date.now();
  psql(cluster.conn, `CREATE TABLESPACE ${TABLESPACE} LOCATION '${location}'`);
  psql(cluster.conn, `ALTER TABLE mail SET TABLESPACE ${TABLESPACE}`);
  psql(cluster.conn, `ALTER INDEX mail_pkey SET TABLESPACE ${TABLESPACE}`);
  psql(cluster.conn, `ALTER INDEX IF EXISTS pgbench_accounts_pkey SET TABLESPACE ${TABLESPACE}`);
  psql(cluster.conn, 'CHECKPOINT');
  const oid = Number(psql(cluster.conn, `SELECT oid FROM pg_tablespace WHERE spcname = '${TABLESPACE}'`));
  const bytes = Number(psql(cluster.conn, `SELECT pg_tablespace_size('${TABLESPACE}')`));
  const relations = psql(
    cluster.conn,
    `SELECT string_agg(c.relname || ' ' || pg_size_pretty(pg_relation_size(c.oid)), ', ' ORDER BY pg_relation_size(c.oid) DESC)
       FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace WHERE t.spcname = '${TABLESPACE}'`,
  );
  log(`tablespace ${TABLESPACE} (oid ${oid}) at ${location}: ${relations}; ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return { name: TABLESPACE, oid, location, bytes, relations };
}
