import { InProcessBusRefusedError, connectEventBus } from './event-bus.factory';

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
