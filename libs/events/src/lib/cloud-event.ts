import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { EventSchemaError } from '@rookery/core';
import { EVENT_TYPES, EventData, EventType, Topic, isEventType } from './event-types';

/**
 * The CloudEvents 1.0 envelope (JSON, structured mode) every rookery event travels in. `subject`
 * is the tier, which is also the Kafka key, so one tier's events stay ordered. `dataschema` names
 * the versioned schema the data was validated against on publish; consumers validate again.
 */
export interface CloudEvent<K extends EventType = EventType> {
  specversion: '1.0';
  id: string;
  source: string;
  type: K;
  time: string;
  subject: string;
  datacontenttype: 'application/json';
  dataschema: string;
  data: EventData<K>;
}

export function dataSchemaUri(type: EventType, version: number = EVENT_TYPES[type].version): string {
  return `urn:rookery:schema:${type}:v${version}`;
}

const envelope = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().min(1),
    source: z.string().min(1),
    type: z.string(),
    time: z.string().datetime({ offset: true }),
    subject: z.string().min(1),
    datacontenttype: z.literal('application/json'),
    dataschema: z.string(),
    data: z.unknown(),
    // The authenticity proof (event-signature.ts): extension attributes, checked by the Kafka bus.
    rookerykeyid: z.string().optional(),
    rookerysig: z.string().optional(),
  })
  .strict();

export interface CreateEventOptions {
  /** Who emits it: 'rookery/cli', 'rookery/oltp-backup'. */
  source: string;
  id?: string;
  time?: Date;
}

/** Builds and validates an event; throws EventSchemaError when `data` does not match the schema. */
export function createEvent<K extends EventType>(type: K, subject: string, data: EventData<K>, options: CreateEventOptions): CloudEvent<K> {
  return validateEvent({
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    source: options.source,
    type,
    time: (options.time ?? new Date()).toISOString(),
    subject,
    datacontenttype: 'application/json',
    dataschema: dataSchemaUri(type),
    data,
  }) as CloudEvent<K>;
}

/** Checks the envelope, the type, the schema version and the data; returns the event typed. */
export function validateEvent(value: unknown): CloudEvent {
  const parsed = envelope.safeParse(value);
  if (!parsed.success) throw new EventSchemaError(`invalid event envelope: ${describe(parsed.error)}`);
  const event = parsed.data;
  if (!isEventType(event.type)) throw new EventSchemaError(`unknown event type '${event.type}' (event ${event.id})`);
  const definition = EVENT_TYPES[event.type];
  if (event.dataschema !== dataSchemaUri(event.type, definition.version)) {
    throw new EventSchemaError(
      `event ${event.id} of type '${event.type}' has schema '${event.dataschema}', this rookery reads ${dataSchemaUri(event.type)}`,
    );
  }
  const data = definition.schema.safeParse(event.data);
  if (!data.success) throw new EventSchemaError(`event ${event.id} of type '${event.type}' has invalid data: ${describe(data.error)}`);
  return { ...event, type: event.type, data: data.data } as CloudEvent;
}

export function topicOf(event: CloudEvent): Topic {
  return EVENT_TYPES[event.type].topic;
}

export function serializeEvent(event: CloudEvent): Buffer {
  return Buffer.from(JSON.stringify(event));
}

export function parseEvent(bytes: Buffer | string): CloudEvent {
  return validateEvent(parseEventJson(bytes));
}

/** The JSON of an event as received, before validation (what an authenticity proof is checked on). */
export function parseEventJson(bytes: Buffer | string): unknown {
  try {
    return JSON.parse(bytes.toString());
  } catch (error) {
    throw new EventSchemaError('event is not valid JSON', { cause: error });
  }
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
}
