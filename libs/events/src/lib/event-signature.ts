import {
  EventUnauthenticError,
  SIGNATURE_ALGORITHM,
  Secret,
  SigningKey,
  deriveSigningKey,
  signRecord,
  signatureProblem,
  signingKeyring,
} from '@rookery/core';
import { CloudEvent } from './cloud-event';

/**
 * The authenticity proof an event carries (DESIGN §7), as two CloudEvents extension attributes
 * in the structured JSON: `rookerykeyid` names the producing service's key, `rookerysig` is the
 * HMAC-SHA256 (hex) of the canonical event — every attribute, `rookerykeyid` included, the
 * signature excepted — under a subkey derived from that key (record-signature.ts, purpose
 * 'events'). Anyone who can write to a topic can build a well-formed event; only a holder of the
 * key can sign one. Consumers check the proof before the event reaches a handler and hand the
 * handler the event without it.
 */
export const PROOF_ATTRIBUTES = { keyId: 'rookerykeyid', signature: 'rookerysig' } as const;

/** What signs a service's events: its key id (the service's name, as consumers list it) and key material. */
export interface EventSigningSettings {
  keyId: string;
  key: Secret<Buffer>;
}

/**
 * What a consumer accepts. `keys`: the producing services' keys by id. `allowUnsigned`: an event
 * whose proof cannot be checked (none, or a key not in `keys`) is accepted as it is; a proof under
 * a known key still has to match. Without it, only events signed by one of `keys` are accepted.
 */
export interface EventVerification {
  keys: readonly VerifyingKey[];
  allowUnsigned: boolean;
}

/**
 * A producing service's key as a consumer holds it. `types`: the event types it may sign (exact,
 * or a prefix ending in `.*`: `dev.rookery.validation.*`); absent, any. A proof under a key for a
 * type it may not sign is refused: a backup service's key cannot vouch for a validation.
 */
export type VerifyingKey = SigningKey & { types?: readonly string[] | null };

export type SignedCloudEvent = CloudEvent & { rookerykeyid: string; rookerysig: string };

/** The subkey a service signs its events with (and consumers verify them with), named `keyId`. */
export function eventSigningKey(settings: EventSigningSettings): SigningKey {
  return deriveSigningKey(settings.key.reveal(), 'events', settings.keyId);
}

/** A consumer's key for a producing service, limited to `types` when given. */
export function eventVerifyingKey(settings: EventSigningSettings & { types?: readonly string[] | null }): VerifyingKey {
  return { ...eventSigningKey(settings), types: settings.types ?? null };
}

/** The event as it travels: its JSON form with the proof under `key`. */
export function signEvent(event: CloudEvent, key: SigningKey): SignedCloudEvent {
  const body = { ...withoutProof(jsonCopy(event)), [PROOF_ATTRIBUTES.keyId]: key.id };
  return { ...body, [PROOF_ATTRIBUTES.signature]: signRecord('cloud-event', body, key).mac } as SignedCloudEvent;
}

/**
 * Checks the proof of an event as it was received (`raw`, the parsed JSON, before any schema
 * parsing could reshape it); throws EventUnauthenticError naming the event and why.
 */
export function verifyEventProof(raw: Record<string, unknown>, verification: EventVerification): void {
  const problem = proofProblem(raw, verification);
  if (problem) throw new EventUnauthenticError(`${describeEvent(raw)} ${problem}`);
}

/** The event without its proof attributes: what handlers, the ledger and the outbox see. */
export function withoutProof<T extends object>(event: T): T {
  const copy = { ...event } as Record<string, unknown>;
  delete copy[PROOF_ATTRIBUTES.keyId];
  delete copy[PROOF_ATTRIBUTES.signature];
  return copy as T;
}

function proofProblem(raw: Record<string, unknown>, { keys, allowUnsigned }: EventVerification): string | null {
  const { [PROOF_ATTRIBUTES.signature]: mac, ...body } = raw;
  const keyId = body[PROOF_ATTRIBUTES.keyId];
  if (mac === undefined && keyId === undefined) return allowUnsigned ? null : 'is not signed';
  if (typeof mac !== 'string' || typeof keyId !== 'string') {
    return `has an incomplete proof (${PROOF_ATTRIBUTES.keyId} and ${PROOF_ATTRIBUTES.signature} are strings that go together)`;
  }
  // A proof this consumer cannot check is no proof: accepted only where unsigned events are.
  if (allowUnsigned && !keys.some((key) => key.id === keyId)) return null;
  const problem = signatureProblem('cloud-event', body, { algorithm: SIGNATURE_ALGORITHM, keyId, mac }, signingKeyring(null, keys));
  if (problem) return problem;
  const types = keys.find((key) => key.id === keyId)?.types;
  if (types && !types.some((allowed) => typeMatches(allowed, body['type']))) {
    return `is signed by key ${keyId}, which may sign only ${types.join(', ')} (events.verifyKeys.${keyId}.types)`;
  }
  return null;
}

function typeMatches(allowed: string, type: unknown): boolean {
  if (typeof type !== 'string') return false;
  return allowed.endsWith('.*') ? type.startsWith(allowed.slice(0, -1)) : type === allowed;
}

function describeEvent(raw: Record<string, unknown>): string {
  const text = (value: unknown) => (typeof value === 'string' ? value.slice(0, 200) : String(value));
  return `event ${text(raw['id'])} of type '${text(raw['type'])}' from '${text(raw['source'])}'`;
}

/** The event as JSON would carry it (undefined members dropped), so signer and verifier see one shape. */
function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
