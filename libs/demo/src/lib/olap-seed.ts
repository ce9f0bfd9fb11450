import { SeedOptions, SeedPlan, SeedResult, VOCABULARY, draw, runSeed } from './seed-runner';

export const OLAP_DATABASE = 'penguinmails_olap';

/** Rows per MiB requested, measured on PostgreSQL 15; dim_date is two fixed years. */
const ROWS_PER_MB = {
  dim_date: 0,
  dim_organisation: 3,
  dim_campaign: 42,
  fact_email_sends: 2900,
  fact_deliverability: 1680,
  saved_reports: 4,
  admin_audit_log: 630,
} as const;

type OlapTable = keyof typeof ROWS_PER_MB;

/**
 * The materialized views of the OLAP database, in dependency order (the monthly summary reads the
 * daily stats), each with the query that computes it: tests compare a restored view with a fresh
 * computation over the restored facts.
 */
export const OLAP_MATERIALIZED_VIEWS: readonly { name: string; query: string }[] = [
  {
    name: 'analytics.mv_daily_campaign_stats',
    query: `select f.date_key, f.campaign_key, f.organisation_key,
                   sum(f.recipients)::bigint as recipients, sum(f.delivered)::bigint as delivered,
                   sum(f.opened)::bigint as opened, sum(f.clicked)::bigint as clicked,
                   sum(f.revenue) as revenue
            from analytics.fact_email_sends f
            group by f.date_key, f.campaign_key, f.organisation_key`,
  },
  {
    name: 'analytics.mv_monthly_organisation_summary',
    query: `select d.year, d.month, s.organisation_key, o.plan,
                   sum(s.delivered)::bigint as delivered, sum(s.opened)::bigint as opened,
                   round(sum(s.opened)::numeric / nullif(sum(s.delivered), 0), 4) as open_rate,
                   sum(s.revenue) as revenue
            from analytics.mv_daily_campaign_stats s
            join analytics.dim_date d on d.date_key = s.date_key
            join analytics.dim_organisation o on o.organisation_key = s.organisation_key
            group by d.year, d.month, s.organisation_key, o.plan`,
  },
  {
    name: 'analytics.mv_provider_deliverability',
    query: `select f.provider, d.year, d.quarter,
                   sum(f.delivered)::bigint as delivered, sum(f.bounced)::bigint as bounced,
                   sum(f.complaints)::bigint as complaints
            from analytics.fact_deliverability f
            join analytics.dim_date d on d.date_key = f.date_key
            group by f.provider, d.year, d.quarter`,
  },
];

/**
 * A PenguinMails-like OLAP database: an `analytics` star schema (date, organisation and campaign
 * dimensions; send and deliverability facts), materialized views over it (one over another), a
 * `reporting` schema of saved reports, and `public.admin_audit_log`, whose rows must never reach a
 * backup.
 */
export async function seedOlap(url: string, options: SeedOptions = {}): Promise<SeedResult> {
  return runSeed(url, OLAP_PLAN, options);
}

const SCHEMA_SQL = `
  create schema analytics;
  create schema reporting;
  create table analytics.dim_date (
    date_key integer not null, day date not null, year smallint not null, quarter smallint not null,
    month smallint not null, iso_week smallint not null, day_of_week smallint not null, is_weekend boolean not null
  );
  create table analytics.dim_organisation (
    organisation_key bigint not null, name text not null, plan text not null, country char(2), signup_date date not null
  );
  create table analytics.dim_campaign (
    campaign_key bigint not null, organisation_key bigint not null, name text not null, channel text not null
  );
  create table analytics.fact_email_sends (
    send_key bigint not null, date_key integer not null, campaign_key bigint not null, organisation_key bigint not null,
    recipients integer not null, delivered integer not null, bounced integer not null, opened integer not null,
    clicked integer not null, unsubscribed integer not null, revenue numeric(12,2) not null
  );
  create table analytics.fact_deliverability (
    date_key integer not null, organisation_key bigint not null, provider text not null,
    delivered integer not null, deferred integer not null, bounced integer not null, complaints integer not null
  );
  create table reporting.saved_reports (
    id bigint not null, organisation_key bigint not null, title text not null, definition jsonb not null, created_at timestamptz not null
  );
  create table public.admin_audit_log (
    id bigint not null, occurred_at timestamptz not null, actor text not null, action text not null,
    target text not null, client_ip inet, details jsonb not null
  );`;

const { WORDS, NOUNS, PLANS, COUNTRIES, FIRST, EPOCH } = VOCABULARY;
const DAYS = 730;

function insertSql(table: OlapTable, counts: Record<OlapTable, number>): string {
  const r = draw;
  const orgs = counts.dim_organisation;
  const campaigns = counts.dim_campaign;
  const dateKey = (col: number) => `to_char(date '2024-01-01' + floor(${r(col)} * ${DAYS})::int, 'YYYYMMDD')::int`;
  switch (table) {
    case 'dim_date':
      return `insert into analytics.dim_date
        select to_char(d, 'YYYYMMDD')::int, d, extract(year from d), extract(quarter from d), extract(month from d),
               extract(week from d), extract(isodow from d), extract(isodow from d) >= 6
        from generate_series($1::bigint, $2::bigint) g, lateral (select (date '2024-01-01' + (g - 1)::int) as d) x
        where $3::int is not null`;
    case 'dim_organisation':
      return `insert into analytics.dim_organisation
        select g, pg_temp.pick(${WORDS}, ${r(1)}) || ' ' || pg_temp.pick(${NOUNS}, ${r(2)}) || ' ' || g,
               pg_temp.pick(${PLANS}, ${r(3)}),
               case when ${r(4)} < 0.1 then null else pg_temp.pick(${COUNTRIES}, ${r(5)}) end,
               date '2022-01-01' + floor(${r(6)} * 700)::int
        from generate_series($1::bigint, $2::bigint) g`;
    case 'dim_campaign':
      return `insert into analytics.dim_campaign
        select g, 1 + (g - 1) % ${orgs}, pg_temp.pick(${WORDS}, ${r(1)}) || ' campaign #' || g,
               pg_temp.pick(array['newsletter','transactional','promo','onboarding'], ${r(2)})
        from generate_series($1::bigint, $2::bigint) g`;
    case 'fact_email_sends':
      return `insert into analytics.fact_email_sends
        select g, ${dateKey(1)}, c.campaign, 1 + (c.campaign - 1) % ${orgs},
               n.recipients, n.delivered, n.recipients - n.delivered,
               floor(n.delivered * ${r(3)} * 0.6)::int, floor(n.delivered * ${r(4)} * 0.1)::int,
               floor(n.delivered * ${r(5)} * 0.01)::int, round((${r(6)} * n.delivered * 0.8)::numeric, 2)
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select 1 + floor(${r(7)} * ${campaigns})::bigint as campaign) c,
             lateral (select 10 + floor(${r(8)} * 5000)::int as recipients) m,
             lateral (select m.recipients, floor(m.recipients * (0.9 + ${r(9)} * 0.1))::int as delivered) n`;
    case 'fact_deliverability':
      return `insert into analytics.fact_deliverability
        select ${dateKey(1)}, 1 + floor(${r(2)} * ${orgs})::bigint,
               pg_temp.pick(array['gmail','outlook','yahoo','icloud','gmx','other'], ${r(3)}),
               floor(${r(4)} * 20000)::int, floor(${r(5)} * 300)::int, floor(${r(6)} * 200)::int, floor(${r(7)} * 20)::int
        from generate_series($1::bigint, $2::bigint) g`;
    case 'saved_reports':
      return `insert into reporting.saved_reports
        select g, 1 + (g - 1) % ${orgs}, pg_temp.pick(${WORDS}, ${r(1)}) || ' report ' || g,
               jsonb_build_object('view', 'analytics.mv_monthly_organisation_summary', 'months', 1 + floor(${r(2)} * 12)::int),
               ${EPOCH} + (${r(3)} * interval '365 days')
        from generate_series($1::bigint, $2::bigint) g`;
    case 'admin_audit_log':
      return `insert into public.admin_audit_log
        select g, ${EPOCH} + (${r(1)} * interval '365 days'),
               lower(pg_temp.pick(${FIRST}, ${r(2)})) || '@penguinmails.example',
               pg_temp.pick(array['login','export','delete_contact','change_plan','impersonate','api_key_created'], ${r(3)}),
               'organisation/' || (1 + floor(${r(4)} * ${orgs})::int),
               ('10.0.' || floor(${r(5)} * 256)::int || '.' || floor(${r(6)} * 256)::int)::inet,
               jsonb_build_object('reason', 'support ticket ' || g, 'mfa', ${r(7)} < 0.9)
        from generate_series($1::bigint, $2::bigint) g`;
  }
}

const INDEX_DDL: readonly string[] = [
  'alter table analytics.dim_date add primary key (date_key)',
  'alter table analytics.dim_organisation add primary key (organisation_key)',
  'alter table analytics.dim_campaign add primary key (campaign_key)',
  'alter table analytics.fact_email_sends add primary key (send_key)',
  'create index fact_email_sends_date_key_idx on analytics.fact_email_sends (date_key)',
  'create index fact_deliverability_date_key_idx on analytics.fact_deliverability (date_key)',
  'alter table reporting.saved_reports add primary key (id)',
  'alter table public.admin_audit_log add primary key (id)',
];

const FINAL_DDL: readonly string[] = [
  'alter table analytics.dim_campaign add foreign key (organisation_key) references analytics.dim_organisation (organisation_key)',
  'alter table analytics.fact_email_sends add foreign key (date_key) references analytics.dim_date (date_key), add foreign key (campaign_key) references analytics.dim_campaign (campaign_key)',
  'alter table analytics.fact_deliverability add foreign key (date_key) references analytics.dim_date (date_key), add foreign key (organisation_key) references analytics.dim_organisation (organisation_key)',
  ...OLAP_MATERIALIZED_VIEWS.map((view) => `create materialized view ${view.name} as ${view.query}`),
  'create unique index mv_daily_campaign_stats_key on analytics.mv_daily_campaign_stats (date_key, campaign_key, organisation_key)',
];

const OLAP_PLAN: SeedPlan<OlapTable> = {
  defaultDatabase: OLAP_DATABASE,
  schemaSql: SCHEMA_SQL,
  rowsPerMb: ROWS_PER_MB,
  minimumRows: { dim_date: DAYS, dim_organisation: 3, dim_campaign: 10 },
  insertSql,
  indexDdl: INDEX_DDL,
  finalDdl: FINAL_DDL,
};
