import { SeedOptions, SeedPlan, SeedResult, VOCABULARY, draw, runSeed } from './seed-runner';

export type { SeedProgress } from './seed-runner';
export const OLTP_DATABASE = 'penguinmails_oltp';

export type SeedOltpOptions = SeedOptions;
export type SeedOltpResult = SeedResult;

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

/**
 * A PenguinMails-like OLTP database (organisations, users, campaigns, contacts, sent_emails, and
 * `email_events` without a primary key), generated server-side by runSeed.
 */
export async function seedOltp(url: string, options: SeedOltpOptions = {}): Promise<SeedOltpResult> {
  return runSeed(url, OLTP_PLAN, options);
}

const SCHEMA_SQL = `
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
    );`;

const { FIRST, LAST, WORDS, NOUNS, DOMAINS, SUBJECTS, SENTENCES, EPOCH, PLANS, COUNTRIES } = VOCABULARY;

/** INSERT … SELECT for one id range ($1..$2) of one table with seed $3. */
function insertSql(table: SeedTable, counts: Record<SeedTable, number>): string {
  const r = draw;
  const orgs = counts.organisations;
  const users = counts.users;
  const campaigns = counts.campaigns;
  const contactsPerOrg = counts.contacts / orgs;
  const sentEmails = counts.sent_emails;
  switch (table) {
    case 'organisations':
      return `insert into organisations
        select g, n.name, lower(replace(n.name, ' ', '-')) || '-' || g,
               pg_temp.pick(${PLANS}, ${r(1)}),
               case when ${r(2)} < 0.1 then null else pg_temp.pick(${COUNTRIES}, ${r(3)}) end,
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

const OLTP_PLAN: SeedPlan<SeedTable> = {
  defaultDatabase: OLTP_DATABASE,
  schemaSql: SCHEMA_SQL,
  rowsPerMb: ROWS_PER_MB,
  minimumRows: { organisations: 2 },
  // Contacts are spread evenly over organisations (contact id → organisation by modulo).
  adjustCounts: (counts) => {
    counts.contacts = Math.ceil(counts.contacts / counts.organisations) * counts.organisations;
  },
  insertSql,
  indexDdl: INDEX_DDL,
  finalDdl: FOREIGN_KEY_DDL,
};
