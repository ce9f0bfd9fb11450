import { EventUnauthenticError, Secret, deriveSigningKey } from '@rookery/core';
import { createEvent, parseEventJson, validateEvent } from './cloud-event';
import { EventVerification, eventSigningKey, eventVerifyingKey, signEvent, verifyEventProof, withoutProof } from './event-signature';

const keyOf = (keyId: string, material: string) => eventSigningKey({ keyId, key: new Secret(Buffer.from(material)) });
const validator = keyOf('validator', 'v'.repeat(64));
const oltpBackup = keyOf('oltp-backup', 'o'.repeat(64));
const strict: EventVerification = { keys: [validator, oltpBackup], allowUnsigned: false };

const passed = () =>
  createEvent(
    'dev.rookery.validation.passed',
    'oltp',
    { backupId: '20261126T020000-oltp', tier: 'oltp', checks: [{ name: 'sha256', ok: true }], validatedAt: '2026-11-26T02:05:00.000Z' },
    { source: 'rookery/validator' },
  );

/** The event as a consumer receives it: the bytes a producer sent, parsed. */
const received = (value: unknown) => parseEventJson(JSON.stringify(value)) as Record<string, unknown>;

const problem = (raw: Record<string, unknown>, verification: EventVerification = strict): string | null => {
  try {
    verifyEventProof(raw, verification);
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(EventUnauthenticError);
    return (error as Error).message;
  }
};

describe('event signatures', () => {
  it('signs an event with two extension attributes that still pass the envelope, and verifies it', () => {
    const event = passed();
    const signed = signEvent(event, validator);
    expect(signed).toMatchObject({ rookerykeyid: 'validator', rookerysig: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(withoutProof(validateEvent(received(signed)))).toEqual(event);
    expect(problem(received(signed))).toBeNull();
    // Attribute order does not matter (canonical JSON); the proof is the same for the same event.
    const reordered = Object.fromEntries(Object.entries(received(signed)).reverse());
    expect(problem(reordered)).toBeNull();
    expect(signEvent(event, validator).rookerysig).toBe(signed.rookerysig);
  });

  const id = (raw: Record<string, unknown>) => `event ${raw['id']} of type 'dev.rookery.validation.passed' from 'rookery/validator'`;

  it.each([
    ['unsigned', (event: Record<string, unknown>) => event, 'is not signed'],
    [
      'its data changed after signing',
      (event: Record<string, unknown>) => ({
        ...signEvent(passed(), validator),
        id: event['id'],
        data: { ...(event['data'] as object), backupId: 'other' },
      }),
      'has a signature that does not match (key validator)',
    ],
    [
      'another key under the validator name',
      (event: Record<string, unknown>) => signEvent(validateEvent(event), keyOf('validator', 'x'.repeat(64))),
      'has a signature that does not match (key validator)',
    ],
    [
      'a key no consumer knows',
      (event: Record<string, unknown>) => signEvent(validateEvent(event), keyOf('intruder', 'i'.repeat(64))),
      'is signed by an unknown key intruder',
    ],
    [
      'a signature without its key id',
      (event: Record<string, unknown>) => ({ ...event, rookerysig: 'ab'.repeat(32) }),
      'has an incomplete proof',
    ],
    [
      'a signature that is not hex',
      (event: Record<string, unknown>) => ({ ...signEvent(validateEvent(event), validator), rookerysig: 'forged' }),
      'has a signature that does not match',
    ],
  ])('refuses an event %s, naming it', (_case, forge, reason) => {
    const raw = received(forge(received(passed())));
    expect(problem(raw)).toContain(`${id(raw)} ${reason}`);
  });

  it('derives event keys apart from repository signing keys: the same material signs nothing the other accepts', () => {
    const material = Buffer.from('k'.repeat(64));
    const events = deriveSigningKey(material, 'events', 'oltp-backup');
    const records = deriveSigningKey(material, 'records', 'oltp-backup');
    expect(events.subkey.equals(records.subkey)).toBe(false);
    expect(problem(received(signEvent(passed(), records)), { keys: [events], allowUnsigned: false })).toContain('does not match');
  });

  it('with allowUnsigned accepts what it cannot check (no proof, an unknown key), never a proof that does not match', () => {
    const lenient: EventVerification = { keys: [validator], allowUnsigned: true };
    expect(problem(received(passed()), lenient)).toBeNull();
    expect(problem(received(signEvent(passed(), oltpBackup)), lenient)).toBeNull();
    const altered = { ...signEvent(passed(), validator), subject: 'olap' };
    expect(problem(received(altered), lenient)).toContain('has a signature that does not match (key validator)');
  });

  it('refuses a proof under a key for a type that key may not sign', () => {
    const material = (text: string) => new Secret(Buffer.from(text.repeat(64)));
    const limited: EventVerification = {
      keys: [
        eventVerifyingKey({ keyId: 'validator', key: material('v'), types: ['dev.rookery.validation.*', 'dev.rookery.drill.completed'] }),
        eventVerifyingKey({ keyId: 'oltp-backup', key: material('o'), types: ['dev.rookery.backup.*'] }),
      ],
      allowUnsigned: false,
    };
    expect(problem(received(signEvent(passed(), validator)), limited)).toBeNull();
    const raw = received(signEvent(passed(), oltpBackup));
    expect(problem(raw, limited)).toBe(
      `${id(raw)} is signed by key oltp-backup, which may sign only dev.rookery.backup.* (events.verifyKeys.oltp-backup.types)`,
    );
    // An exact type allows that type.
    expect(
      problem(raw, {
        ...limited,
        keys: [eventVerifyingKey({ keyId: 'oltp-backup', key: material('o'), types: ['dev.rookery.validation.passed'] })],
      }),
    ).toBeNull();
  });

  it('never puts the key material in the event', () => {
    const signed = JSON.stringify(signEvent(passed(), validator));
    expect(signed).not.toContain('v'.repeat(64));
    expect(signed).not.toContain(validator.subkey.toString('hex'));
  });
});
