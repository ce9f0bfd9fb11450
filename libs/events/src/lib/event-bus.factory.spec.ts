import { Secret } from '@rookery/core';
import { InProcessBusRefusedError, UnverifiedConsumerError, connectEventBus, kafkaBusOptions } from './event-bus.factory';

describe('connectEventBus without brokers', () => {
  it("refuses the in-process bus to a consumer of other processes' events, in one line with a hint", async () => {
    const refused = connectEventBus({ brokers: [], clientId: 'rookery-validator', consumer: 'validator' });
    await expect(refused).rejects.toThrow(InProcessBusRefusedError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.not.stringContaining('\n'),
      hint: expect.stringContaining('events.allowInProcess'),
    });
  });

  it.each([
    ['a consumer allowed in-process', { consumer: 'validator', allowInProcess: true }],
    ['a publisher', {}],
  ])('gives %s the in-process bus', async (_, settings) => {
    const bus = await connectEventBus({ brokers: [], clientId: 'rookery', ...settings });
    expect(bus.kind).toBe('in-process');
    await bus.close();
  });
});

describe('connectEventBus with brokers', () => {
  it('refuses a consumer with no key to check events against, unless unsigned events are allowed', async () => {
    const refused = connectEventBus({ brokers: ['127.0.0.1:9'], clientId: 'rookery-compliance', consumer: 'compliance-reporting' });
    await expect(refused).rejects.toThrow(UnverifiedConsumerError);
    await expect(refused).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      issues: ['events.verifyKeys'],
      hint: expect.stringContaining('events.allowUnsigned: true'),
    });
  });

  it('verifies every consumed event under the configured keys, and signs with its own', () => {
    const key = (keyId: string) => ({ keyId, key: new Secret(Buffer.from(keyId.padEnd(32, '.'))) });
    const options = kafkaBusOptions({ brokers: ['k:1'], clientId: 'c', signing: key('validator'), verifyKeys: [key('oltp-backup')] });
    expect(options.signing?.id).toBe('validator');
    expect(options.verification).toMatchObject({ keys: [expect.objectContaining({ id: 'oltp-backup' })], allowUnsigned: false });
    // No keys at all: a subscriber of such a bus accepts nothing unsigned.
    expect(kafkaBusOptions({ brokers: ['k:1'], clientId: 'c' }).verification).toEqual({ keys: [], allowUnsigned: false });
  });
});
