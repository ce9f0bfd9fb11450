import { Logger } from '@nestjs/common';
import { BackupCatalog, EventLedger, LedgerEntry } from '@rookery/catalog';
import { CloudEvent, EventBus, backupCompletedEvent } from '@rookery/events';
import { ServiceEventsService } from '@rookery/service-kit';
import { makeManifest } from '@rookery/testing';
import { BackupValidator, ValidationReport, ValidationRequestWindow } from '@rookery/validation';
import { ValidatorService } from './validator.service';

/**
 * The validator's decisions with strict fakes of its adapters: what a flood of backup.completed
 * events naming one backup costs (issue 16: at most one validation per window), and that the
 * retry of one request is not counted as another.
 */
function validatorWith(windowMs: number) {
  const validated: string[] = [];
  const published: CloudEvent[] = [];
  const ledger = new Map<string, Omit<LedgerEntry, 'receivedAt'>>();
  const validator = {
    validate: async (tier: string, backupId: string): Promise<ValidationReport> => {
      validated.push(`${tier}/${backupId}`);
      return {
        backupId,
        tier: tier as 'oltp',
        method: 'physical',
        ok: true,
        checks: [{ name: 'manifest', ok: true }],
        validatedAt: '2026-12-07T02:00:00.000Z',
        durationMs: 1,
      };
    },
  } as unknown as BackupValidator;
  const events = {
    source: 'rookery/validator',
    publish: async (...list: CloudEvent[]) => void published.push(...list),
  } as unknown as ServiceEventsService;
  const catalog = { outbox: { has: async (id: string) => published.some((event) => event.id === id) } } as unknown as BackupCatalog;
  let failAppend = false;
  const eventLedger = {
    has: async (id: string) => ledger.has(id),
    append: async (entries: Omit<LedgerEntry, 'receivedAt'>[]) => {
      if (failAppend) throw new Error('catalog unavailable');
      for (const entry of entries) ledger.set(entry.eventId, entry);
      return entries.length;
    },
  } as unknown as EventLedger;
  const service = new ValidatorService(validator, events, catalog, eventLedger, {} as EventBus, new ValidationRequestWindow(windowMs));
  return { service, validated, published, failNextAppend: (fail: boolean) => (failAppend = fail) };
}

const completed = (backupId: string) =>
  backupCompletedEvent(makeManifest({ id: backupId, tier: 'oltp' }), {
    actor: 'test',
    repository: 'file:///repo',
    source: 'rookery/oltp-backup',
  });

describe('ValidatorService request window', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterAll(() => Logger.overrideLogger(['log', 'error', 'warn', 'debug', 'verbose']));

  it('validates a backup once however many backup.completed events name it within the window', async () => {
    const { service, validated, published } = validatorWith(3_600_000);
    for (let index = 0; index < 50; index++) await service.handle(completed('20261207T020000-oltp'));
    await service.handle(completed('20261207T030000-oltp'));
    expect(validated).toEqual(['oltp/20261207T020000-oltp', 'oltp/20261207T030000-oltp']);
    expect(published.map((event) => event.type)).toEqual(['dev.rookery.validation.passed', 'dev.rookery.validation.passed']);
  });

  it('validates again the same request whose result could not be recorded (a retry, not a new request)', async () => {
    const { service, validated, failNextAppend } = validatorWith(3_600_000);
    const event = completed('20261207T020000-oltp');
    failNextAppend(true);
    await expect(service.handle(event)).rejects.toThrow('catalog unavailable');
    failNextAppend(false);
    await service.handle(event);
    await service.handle(event);
    expect(validated).toEqual(['oltp/20261207T020000-oltp', 'oltp/20261207T020000-oltp']);
  });

  it('with a window of 0 validates every request', async () => {
    const { service, validated } = validatorWith(0);
    await service.handle(completed('20261207T020000-oltp'));
    await service.handle(completed('20261207T020000-oltp'));
    expect(validated).toHaveLength(2);
  });
});
