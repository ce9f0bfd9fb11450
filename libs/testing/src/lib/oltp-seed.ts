import { cpus } from 'node:os';
import { PgSession, PgSqlClient } from '@rookery/postgres';

export const OLTP_DATABASE = 'penguinmails_oltp';

export interface SeedOltpOptions {
  /** Target size of the seeded data (tables + indexes) in MiB; rows scale linearly with it. */
  sizeMb?: number;
  /** Same seed, same rows: two seeds with one seed value have equal table checksums. */
  seed?: number;
  /** Database to create; default penguinmails_oltp. */
  database?: string;
  /** Drop the database first when it exists (else an existing database is an error). */
  dropExisting?: boolean;
  /** Connections loading in parallel; default the number of CPUs (at most 4). */
  parallelism?: number;
  onProgress?: (progress: SeedProgress) => void;
}

export interface SeedProgress {
  phase: 'schema' | 'data' | 'constraints' | 'analyze' | 'done';
  /** 0..1 over the whole seed. */
  fraction: number;
  table?: string;
}

export interface SeedOltpResult {
  database: string;
  url: string;
  /** pg_database_size after seeding (includes the ~7.5 MB of an empty database). */
  databaseBytes: number;
  /** Bytes added by the seed: tables, TOAST and indexes. */
  dataBytes: number;
  rows: Record<string, number>;
  elapsedMs: number;
}

/** Row counts per MiB requested, measured on PostgreSQL 15 (see table comments for row shapes). */
const ROWS_PER_MB = {
  organisations: 0.8,
  users: 8,
  campaigns: 16,
  contacts: 670,
  sent_emails: 900,
  email_events: 1760,
} as const;

type SeedTable = keyof typeof ROWS_PER_MB;
const CHUNK_ROWS = 25_000;

/**
 * A PenguinMails-like OLTP database, generated server-side (generate_series and a deterministic
 * hash of row number, column and seed), so hundreds of MB load in seconds and the same seed always
 * produces the same rows. Tables are loaded without indexes, then keys and indexes are built: the
 * fast order for a bulk load, and the end state is the same as a live system's.
 */
export async function seedOltp(url: string, options: SeedOltpOptions = {}): Promise<SeedOltpResult> {
  const started = Date.now();
  const sizeMb = options.sizeMb ?? 200;
  const seed = options.seed ?? 1;
  const database = options.database ?? OLTP_DATABASE;
  const sql = new PgSqlClient({ applicationName: 'rookery-seed' });
  const progress = options.onProgress ?? (() => undefined);
  const parallelism = Math.max(1, options.parallelism ?? Math.min(4, cpus().length));

  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`invalid database name '${database}'`);
  if (!Number.isFinite(sizeMb) || sizeMb <= 0) throw new Error(`invalid seed size ${sizeMb} MB`);
  if (!Number.isInteger(seed)) throw new Error(`invalid seed ${seed}: expected an integer`);

  progress({ phase: 'schema', fraction: 0 });
  if (options.dropExisting) await sql.query(url, `drop database if exists ${database}`);
  await sql.query(url, `create database ${database}`);
  const target = withDatabase(url, database);
  const [{ size: emptyBytes }] = await sql.query<{ size: string }>(target, 'select pg_database_size(current_database()) as size');
  await sql.withSession(target, (session) => createSchema(session));

  const rows = rowCounts(sizeMb);
  const chunks = Object.entries(rows).flatMap(([table, count]) => chunkRanges(table as SeedTable, count));
  let loaded = 0;
  const totalRows = chunks.reduce((sum, chunk) => sum + chunk.to - chunk.from + 1, 0);
  await runPool(parallelism, chunks, target, sql, async (session, chunk) => {
    await session.query(insertSql(chunk.table, rows), [chunk.from, chunk.to, seed]);
    loaded += chunk.to - chunk.from + 1;
    progress({ phase: 'data', fraction: 0.05 + 0.75 * (loaded / totalRows), table: chunk.table });
  });

  progress({ phase: 'constraints', fraction: 0.8 });
  // Primary keys and indexes of different tables build in parallel; foreign keys need the keys.
  let built = 0;
  await runPool(parallelism, INDEX_DDL, target, sql, async (session, ddl) => {
    await session.query(ddl);
    progress({ phase: 'constraints', fraction: 0.8 + 0.12 * (++built / INDEX_DDL.length) });
  });
  await sql.withSession(target, async (session) => {
    for (const ddl of FOREIGN_KEY_DDL) await session.query(ddl);
    progress({ phase: 'analyze', fraction: 0.95 });
    await session.query('analyze');
  });

  const [{ size }] = await sql.query<{ size: string }>(target, 'select pg_database_size(current_database()) as size');
  progress({ phase: 'done', fraction: 1 });
  return {
    database,
    url: target,
    databaseBytes: Number(size),
    dataBytes: Number(size) - Number(emptyBytes),
    rows,
    elapsedMs: Date.now() - started,
  };
}

function rowCounts(sizeMb: number): Record<SeedTable, number> {
  const counts = {} as Record<SeedTable, number>;
  for (const [table, perMb] of Object.entries(ROWS_PER_MB)) {
    counts[table as SeedTable] = Math.max(table === 'organisations' ? 2 : 10, Math.round(perMb * sizeMb));
  }
  // Contacts are spread evenly over organisations (contact id → organisation by modulo).
  counts.contacts = Math.ceil(counts.contacts / counts.organisations) * counts.organisations;
  return counts;
}

function chunkRanges(table: SeedTable, count: number): { table: SeedTable; from: number; to: number }[] {
  const ranges = [];
  for (let from = 1; from <= count; from += CHUNK_ROWS) {
    ranges.push({ table, from, to: Math.min(count, from + CHUNK_ROWS - 1) });
  }
  return ranges;
}

async function runPool<T>(
  connections: number,
  items: readonly T[],
  url: string,
  sql: PgSqlClient,
  work: (session: PgSession, item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = () =>
    sql.withSession(url, async (session) => {
      await session.query(HELPER_SQL);
      while (next < items.length) await work(session, items[next++]);
    });
  await Promise.all(Array.from({ length: Math.min(connections, items.length) }, worker));
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Session-local helpers (pg_temp, gone with the connection, so nothing of the seed's machinery is
 * left in the database): r(i, column, seed) is a uniform double in [0, 1) from a hash, pick() an
 * element of an array.
 */
const HELPER_SQL = `
  create function pg_temp.r(i bigint, col int, seed int) returns float8
    language sql immutable parallel safe
    as $$ select abs(hashint8extended(i, seed::bigint * 1000 + col) % 1000000007)::float8 / 1000000007 $$;
  create function pg_temp.pick(items text[], x float8) returns text
    language sql immutable parallel safe
    as $$ select items[1 + floor(x * cardinality(items))::int] $$;`;

async function createSchema(session: PgSession): Promise<void> {
  await session.query(`
    create table organisations (
      id bigint not null,
      name text not null,
      slug text not null,
      plan text not null,
      country char(2),
      created_at timestamptz not null,
      settings jsonb not null
    );
    create table users (
      id bigint not null,
      organisation_id bigint not null,
      email text not null,
      full_name text not null,
      role text not null,
      created_at timestamptz not null,
      last_login_at timestamptz
    );
    create table campaigns (
      id bigint not null,
      organisation_id bigint not null,
      created_by bigint not null,
      name text not null,
      subject text not null,
      status text not null,
      scheduled_at timestamptz,
      created_at timestamptz not null,
      metadata jsonb not null
    );
    create table contacts (
      id bigint not null,
      organisation_id bigint not null,
      email text not null,
      first_name text,
      last_name text,
      phone text,
      tags text[] not null,
      subscribed boolean not null,
      created_at timestamptz not null,
      attributes jsonb not null
    );
    create table sent_emails (
      id bigint not null,
      campaign_id bigint not null,
      contact_id bigint not null,
      message_id text not null,
      to_address text not null,
      subject text not null,
      body text not null,
      status text not null,
      sent_at timestamptz not null,
      opened_at timestamptz,
      clicked_at timestamptz,
      metadata jsonb not null
    );
    -- An append-only event log with no primary key, as many real schemas have.
    create table email_events (
      sent_email_id bigint not null,
      event_type text not null,
      occurred_at timestamptz not null,
      ip inet,
      user_agent text,
      payload jsonb
    );`);
}

const FIRST = `array['Ada','Ben','Chloe','Dmitri','Elena','Farid','Grace','Hiro','Ines','Jonas','Kofi','Lena','Mateo','Nora','Omar','Priya','Quinn','Rosa','Sven','Tariq','Uma','Viktor','Wen','Ximena','Yusuf','Zoe']`;
const LAST = `array['Andersen','Brooks','Castillo','Dubois','Eriksen','Fischer','Garcia','Hughes','Ivanova','Jensen','Kowalski','Lopez','Moreau','Nakamura','Okafor','Petrov','Quintero','Rossi','Schmidt','Tanaka','Urban','Varga','Weber','Xu','Young','Zimmermann']`;
const WORDS = `array['Blue','Arctic','Swift','Bright','Quiet','Golden','Northern','Clever','Rocky','Silver','Emperor','Little','Royal','Gentoo','Macaroni','Chinstrap']`;
const NOUNS = `array['Penguin','Labs','Works','Mail','Studio','Goods','Outfitters','Analytics','Foods','Travel','Health','Books','Systems','Garden','Media','Supply']`;
const DOMAINS = `array['example.com','example.org','example.net','mail.example','inbox.example','post.example']`;
const SUBJECTS = `array['Your weekly digest','Last chance: {pct}% off everything','Welcome aboard!','We miss you','New arrivals are here','Your order has shipped','Invitation: spring webinar','Product update for {month}','Thanks for being a customer','Reminder: your cart is waiting','Exclusive early access','Tips to get started']`;
const SENTENCES = `array['Thanks for being part of our community.','We have some exciting news to share with you this week.','Our spring collection has just landed and we think you will love it.','Click the link below to see what is new.','As a valued subscriber you get early access before everyone else.','If you have any questions, simply reply to this email.','Your account settings can be changed at any time.','We have updated our privacy policy to make it clearer.','Join thousands of customers who already switched.','This offer ends on Sunday at midnight.','Here are three tips to get more out of your plan.','Do not miss our live webinar next Thursday.','Free shipping on all orders over fifty euros.','You are receiving this email because you signed up on our website.','Unsubscribe at any time with one click.','We would love to hear your feedback.']`;
const EPOCH = `timestamptz '2024-01-01 00:00:00+00'`;

/** INSERT … SELECT for one id range ($1..$2) of one table with seed $3. */
function insertSql(table: SeedTable, counts: Record<SeedTable, number>): string {
  const r = (col: number) => `pg_temp.r(g, ${col}, $3)`;
  const orgs = counts.organisations;
  const users = counts.users;
  const campaigns = counts.campaigns;
  const contactsPerOrg = counts.contacts / orgs;
  const sentEmails = counts.sent_emails;
  switch (table) {
    case 'organisations':
      return `insert into organisations
        select g, n.name, lower(replace(n.name, ' ', '-')) || '-' || g,
               pg_temp.pick(array['free','starter','growth','enterprise'], ${r(1)}),
               case when ${r(2)} < 0.1 then null else pg_temp.pick(array['DE','FR','GB','US','ES','NL','SE','PL','JP','BR'], ${r(3)}) end,
               ${EPOCH} - (${r(4)} * interval '900 days'),
               jsonb_build_object('timezone', pg_temp.pick(array['UTC','Europe/Berlin','America/New_York','Asia/Tokyo'], ${r(5)}),
                                  'daily_send_limit', (1000 * (1 + floor(${r(6)} * 50)))::int,
                                  'tracking', ${r(7)} < 0.8)
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select pg_temp.pick(${WORDS}, ${r(8)}) || ' ' || pg_temp.pick(${NOUNS}, ${r(9)}) as name) n`;
    case 'users':
      return `insert into users
        select g, 1 + (g - 1) % ${orgs},
               lower(f.first) || '.' || lower(f.last) || g || '@' || pg_temp.pick(${DOMAINS}, ${r(1)}),
               f.first || ' ' || f.last,
               pg_temp.pick(array['owner','admin','editor','editor','viewer'], ${r(2)}),
               ${EPOCH} - (${r(3)} * interval '800 days'),
               case when ${r(4)} < 0.15 then null else ${EPOCH} + (${r(5)} * interval '300 days') end
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select pg_temp.pick(${FIRST}, ${r(6)}) as first, pg_temp.pick(${LAST}, ${r(7)}) as last) f`;
    case 'campaigns':
      return `insert into campaigns
        select g, o.org, o.org + ${orgs} * floor(${r(1)} * ${Math.max(1, Math.floor(users / orgs))})::bigint,
               pg_temp.pick(${WORDS}, ${r(2)}) || ' ' || pg_temp.pick(array['launch','newsletter','re-engagement','promo','onboarding','survey'], ${r(3)}) || ' #' || g,
               replace(replace(pg_temp.pick(${SUBJECTS}, ${r(4)}), '{pct}', (5 * (1 + floor(${r(5)} * 10)))::text), '{month}', to_char(${EPOCH} + (${r(6)} * interval '365 days'), 'FMMonth')),
               pg_temp.pick(array['draft','scheduled','sending','sent','sent','sent','archived'], ${r(7)}),
               case when ${r(8)} < 0.2 then null else ${EPOCH} + (${r(9)} * interval '365 days') end,
               ${EPOCH} + (${r(10)} * interval '300 days'),
               jsonb_build_object('utm_campaign', 'c' || g, 'ab_test', ${r(11)} < 0.3, 'segment', pg_temp.pick(array['all','active','lapsed','vip'], ${r(12)}))
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select 1 + (g - 1) % ${orgs} as org) o`;
    case 'contacts':
      return `insert into contacts
        select g, 1 + (g - 1) % ${orgs},
               lower(f.first) || '.' || lower(f.last) || '.' || g || '@' || pg_temp.pick(${DOMAINS}, ${r(1)}),
               case when ${r(2)} < 0.05 then null else f.first end,
               case when ${r(3)} < 0.08 then null else f.last end,
               case when ${r(4)} < 0.35 then null else '+' || (10 + floor(${r(5)} * 89))::int || ' ' || lpad(floor(${r(6)} * 1e9)::bigint::text, 9, '0') end,
               case floor(${r(7)} * 5)::int when 0 then '{}'::text[] when 1 then '{newsletter}' when 2 then '{customer,newsletter}'
                 when 3 then '{vip,customer}' else '{lead}' end,
               ${r(8)} < 0.9,
               ${EPOCH} - (${r(9)} * interval '700 days'),
               jsonb_build_object('source', pg_temp.pick(array['signup_form','import','api','checkout','event'], ${r(10)}),
                                  'language', pg_temp.pick(array['en','de','fr','es','ja'], ${r(11)}),
                                  'score', floor(${r(12)} * 100)::int)
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select pg_temp.pick(${FIRST}, ${r(13)}) as first, pg_temp.pick(${LAST}, ${r(14)}) as last) f`;
    case 'sent_emails':
      // A campaign's emails go to contacts of the campaign's organisation.
      return `insert into sent_emails
        select g, c.campaign, c.contact,
               '<' || md5(g::text || $3::text) || '@mail.penguinmails.example>',
               'contact' || c.contact || '@' || pg_temp.pick(${DOMAINS}, ${r(1)}),
               pg_temp.pick(${SUBJECTS}, ${r(2)}),
               'Hi ' || pg_temp.pick(${FIRST}, ${r(3)}) || E',\\n\\n'
                 || pg_temp.pick(${SENTENCES}, ${r(4)}) || ' ' || pg_temp.pick(${SENTENCES}, ${r(5)}) || ' '
                 || pg_temp.pick(${SENTENCES}, ${r(6)})
                 || case when ${r(7)} < 0.6 then ' ' || pg_temp.pick(${SENTENCES}, ${r(8)}) || ' ' || pg_temp.pick(${SENTENCES}, ${r(9)}) else '' end
                 || E'\\n\\n— The PenguinMails team',
               s.status, s.sent_at,
               case when s.status in ('opened','clicked') then s.sent_at + (${r(10)} * interval '3 days') end,
               case when s.status = 'clicked' then s.sent_at + (${r(11)} * interval '4 days') end,
               jsonb_build_object('smtp_id', 'smtp-' || (1 + floor(${r(12)} * 16))::int, 'attempts', 1 + floor(${r(13)} * 1.2)::int,
                                  'size_bytes', 2000 + floor(${r(14)} * 40000)::int)
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select 1 + floor(${r(15)} * ${campaigns})::bigint as campaign) k,
             lateral (select k.campaign as campaign,
                             1 + (k.campaign - 1) % ${orgs} + ${orgs} * floor(${r(16)} * ${contactsPerOrg})::bigint as contact) c,
             lateral (select pg_temp.pick(array['delivered','delivered','delivered','opened','opened','clicked','bounced','deferred'], ${r(17)}) as status,
                             ${EPOCH} + (${r(18)} * interval '365 days') as sent_at) s`;
    case 'email_events':
      return `insert into email_events
        select e.sent_email_id,
               pg_temp.pick(array['delivered','delivered','open','open','click','bounce','complaint'], ${r(1)}),
               ${EPOCH} + (${r(2)} * interval '370 days'),
               case when ${r(3)} < 0.25 then null else ('10.' || floor(${r(4)} * 256)::int || '.' || floor(${r(5)} * 256)::int || '.' || floor(${r(6)} * 256)::int)::inet end,
               case when ${r(7)} < 0.3 then null else pg_temp.pick(array['Mozilla/5.0 (Windows NT 10.0; Win64; x64)','Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)','Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0)','Thunderbird/115.0'], ${r(8)}) end,
               case when ${r(9)} < 0.5 then null else jsonb_build_object('link', 'https://shop.example/p/' || floor(${r(10)} * 5000)::int) end
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select 1 + floor(${r(11)} * ${sentEmails})::bigint as sent_email_id) e`;
  }
}

const INDEX_DDL: readonly string[] = [
  'alter table sent_emails add primary key (id)',
  'alter table contacts add primary key (id)',
  'create index email_events_sent_email_id_idx on email_events (sent_email_id)',
  'create index sent_emails_campaign_id_idx on sent_emails (campaign_id)',
  'create unique index contacts_organisation_email_key on contacts (organisation_id, email)',
  'create index sent_emails_contact_id_idx on sent_emails (contact_id)',
  'create index sent_emails_sent_at_idx on sent_emails (sent_at)',
  'alter table organisations add primary key (id), add constraint organisations_slug_key unique (slug)',
  'alter table users add primary key (id), add constraint users_email_key unique (email)',
  'alter table campaigns add primary key (id)',
  'create index campaigns_organisation_status_idx on campaigns (organisation_id, status)',
];

const FOREIGN_KEY_DDL: readonly string[] = [
  'alter table users add foreign key (organisation_id) references organisations (id)',
  'alter table campaigns add foreign key (organisation_id) references organisations (id), add foreign key (created_by) references users (id)',
  'alter table contacts add foreign key (organisation_id) references organisations (id)',
  'alter table sent_emails add foreign key (campaign_id) references campaigns (id), add foreign key (contact_id) references contacts (id)',
  'alter table email_events add foreign key (sent_email_id) references sent_emails (id)',
];
