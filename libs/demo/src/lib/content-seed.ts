import { SeedOptions, SeedPlan, SeedResult, VOCABULARY, draw, runSeed } from './seed-runner';

export const CONTENT_DATABASE = 'penguinmails_content';

/**
 * Rows per MiB requested, measured on PostgreSQL 15: content_objects (one email of ~2 KiB: text
 * and HTML bodies plus the raw MIME message as bytea) is about 85% of the database, as in
 * production, where it dominates everything else.
 */
const ROWS_PER_MB = {
  templates: 4,
  content_objects: 430,
  attachments: 270,
  object_tags: 680,
} as const;

type ContentTable = keyof typeof ROWS_PER_MB;

/**
 * A PenguinMails-like content database: `templates`, the huge `content_objects` (email bodies as
 * text and HTML, raw MIME as bytea, mostly compressible with a few incompressible bytes per row
 * like a real DKIM signature), `attachments` metadata and `object_tags`, linked by foreign keys in
 * both directions around content_objects (templates → content_objects → attachments), plus a
 * sequence and a view, so a split dump must get ordering and sections right to restore it.
 */
export async function seedContent(url: string, options: SeedOptions = {}): Promise<SeedResult> {
  return runSeed(url, CONTENT_PLAN, options);
}

const SCHEMA_SQL = `
  create table templates (
    id bigint not null,
    organisation_id bigint not null,
    name text not null,
    subject text not null,
    html_body text not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  );
  create sequence content_objects_id_seq;
  create table content_objects (
    id bigint not null default nextval('content_objects_id_seq'),
    organisation_id bigint not null,
    template_id bigint,
    message_id text not null,
    subject text not null,
    body_text text not null,
    body_html text not null,
    raw_mime bytea not null,
    size_bytes integer not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
  );
  alter sequence content_objects_id_seq owned by content_objects.id;
  create table attachments (
    id bigint not null,
    content_object_id bigint not null,
    file_name text not null,
    content_type text not null,
    size_bytes bigint not null,
    sha256 bytea not null,
    storage_key text not null,
    created_at timestamptz not null
  );
  create table object_tags (
    content_object_id bigint not null,
    tag text not null
  );
  create view template_usage as
    select t.id as template_id, t.name, count(o.id) as objects
    from templates t left join content_objects o on o.template_id = t.id
    group by t.id, t.name;`;

const { FIRST, DOMAINS, SUBJECTS, SENTENCES, EPOCH, WORDS } = VOCABULARY;

/** Text body of email g (from the sentence vocabulary: compressible like real marketing mail). */
function bodyText(r: typeof draw): string {
  return `'Hi ' || pg_temp.pick(${FIRST}, ${r(3)}) || E',\\n\\n'
    || pg_temp.pick(${SENTENCES}, ${r(4)}) || ' ' || pg_temp.pick(${SENTENCES}, ${r(5)}) || ' '
    || pg_temp.pick(${SENTENCES}, ${r(6)}) || ' ' || pg_temp.pick(${SENTENCES}, ${r(7)}) || E'\\n\\n'
    || pg_temp.pick(${SENTENCES}, ${r(8)}) || ' ' || pg_temp.pick(${SENTENCES}, ${r(9)})
    || E'\\n\\nOrder reference ' || upper(substr(md5(g::text || $3::text), 1, 12))
    || E'\\n\\n— The PenguinMails team'`;
}

function insertSql(table: ContentTable, counts: Record<ContentTable, number>): string {
  const r = draw;
  switch (table) {
    case 'templates':
      return `insert into templates
        select g, 1 + (g - 1) % 97,
               pg_temp.pick(${WORDS}, ${r(1)}) || ' template ' || g,
               pg_temp.pick(${SUBJECTS}, ${r(2)}),
               '<html><body><h1>{{title}}</h1><p>' || pg_temp.pick(${SENTENCES}, ${r(3)}) || '</p>{{content}}<footer>'
                 || pg_temp.pick(${SENTENCES}, ${r(4)}) || '</footer></body></html>',
               ${EPOCH} - (${r(5)} * interval '400 days'),
               ${EPOCH} + (${r(6)} * interval '100 days')
        from generate_series($1::bigint, $2::bigint) g`;
    case 'content_objects':
      // Ids are assigned here; the sequence is set past them after the load.
      return `insert into content_objects
        select g, 1 + (g - 1) % 97,
               case when ${r(1)} < 0.1 then null else 1 + floor(${r(2)} * ${counts.templates})::bigint end,
               '<' || md5(g::text || 'content' || $3::text) || '@mail.penguinmails.example>',
               s.subject, b.body,
               '<html><body><p>' || replace(b.body, E'\\n\\n', '</p><p>') || '</p></body></html>',
               convert_to('Message-ID: <' || g || '@mail.penguinmails.example>' || E'\\r\\n'
                 || 'From: news@' || pg_temp.pick(${DOMAINS}, ${r(10)}) || E'\\r\\n'
                 || 'Subject: ' || s.subject || E'\\r\\nMIME-Version: 1.0\\r\\nContent-Type: text/plain; charset=utf-8\\r\\n\\r\\n'
                 || b.body, 'UTF8')
                 -- A DKIM-like signature: 48 bytes that no compressor can shrink.
                 || decode(md5(g::text || $3::text || 'a') || md5(g::text || $3::text || 'b') || md5(g::text || $3::text || 'c'), 'hex'),
               length(b.body) * 3 + 400,
               ${EPOCH} + (${r(11)} * interval '365 days'),
               ${EPOCH} + (${r(12)} * interval '370 days')
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select pg_temp.pick(${SUBJECTS}, ${r(13)}) as subject) s,
             lateral (select ${bodyText(r)} as body) b`;
    case 'attachments':
      return `insert into attachments
        select g, o.id,
               pg_temp.pick(array['invoice','report','photo','ticket','brochure','contract'], ${r(1)}) || '-' || g
                 || pg_temp.pick(array['.pdf','.png','.jpg','.docx','.csv'], ${r(2)}),
               pg_temp.pick(array['application/pdf','image/png','image/jpeg','text/csv'], ${r(3)}),
               (1024 + floor(${r(4)} * 5e6))::bigint,
               sha256(g::text::bytea),
               'attachments/' || to_char(${EPOCH} + (${r(5)} * interval '365 days'), 'YYYY/MM/DD') || '/' || md5(g::text),
               ${EPOCH} + (${r(6)} * interval '365 days')
        from generate_series($1::bigint, $2::bigint) g,
             lateral (select 1 + floor(${r(7)} * ${counts.content_objects})::bigint as id) o`;
    case 'object_tags':
      return `insert into object_tags
        select 1 + floor(${r(1)} * ${counts.content_objects})::bigint,
               pg_temp.pick(array['newsletter','transactional','promo','receipt','reminder','survey','welcome'], ${r(2)})
        from generate_series($1::bigint, $2::bigint) g`;
  }
}

const INDEX_DDL: readonly string[] = [
  'alter table content_objects add primary key (id)',
  'create unique index content_objects_message_id_key on content_objects (message_id)',
  'create index content_objects_organisation_created_idx on content_objects (organisation_id, created_at)',
  'alter table templates add primary key (id)',
  'alter table attachments add primary key (id)',
  'create index attachments_content_object_id_idx on attachments (content_object_id)',
  'create index object_tags_content_object_id_idx on object_tags (content_object_id)',
];

const FINAL_DDL: readonly string[] = [
  'alter table content_objects add foreign key (template_id) references templates (id)',
  'alter table attachments add foreign key (content_object_id) references content_objects (id)',
  'alter table object_tags add foreign key (content_object_id) references content_objects (id)',
  `select setval('content_objects_id_seq', (select max(id) from content_objects))`,
];

const CONTENT_PLAN: SeedPlan<ContentTable> = {
  defaultDatabase: CONTENT_DATABASE,
  schemaSql: SCHEMA_SQL,
  rowsPerMb: ROWS_PER_MB,
  minimumRows: { templates: 3 },
  insertSql,
  indexDdl: INDEX_DDL,
  finalDdl: FINAL_DDL,
};
