import { listsStandby, synchronousStandbyNamesFor } from './pg-receivewal.client';
import { createSlotArgs, receivewalArgs } from './pg-receivewal.driver';

describe('receivewalArgs', () => {
  it.each([
    [{ conninfo: 'host=127.0.0.1 port=5433 user=postgres', directory: '/var/spool/q', slot: 'rookery_queue_wal' }, []],
    [{ conninfo: "host=db user='a b'", directory: '/spool with space', slot: 's1', statusIntervalSeconds: 1 }, ['--status-interval=1']],
  ])('streams synchronously into the directory through the slot, without looping (%#)', (options, extra) => {
    expect(receivewalArgs(options)).toEqual([
      `--directory=${options.directory}`,
      `--slot=${options.slot}`,
      '--synchronous',
      '--no-loop',
      '--verbose',
      '--no-password',
      ...extra,
      '-d',
      options.conninfo,
    ]);
  });

  it('never carries a password or the application name', () => {
    const args = receivewalArgs({ conninfo: 'host=db user=replicator', directory: '/d', slot: 's' }).join(' ');
    expect(args).not.toMatch(/password=|application_name/);
  });
});

describe('createSlotArgs', () => {
  it('creates the slot only when missing, and exits', () => {
    expect(createSlotArgs({ conninfo: 'host=db port=5432', slot: 'rookery_queue_wal' })).toEqual([
      '--create-slot',
      '--if-not-exists',
      '--slot=rookery_queue_wal',
      '--no-password',
      '-d',
      'host=db port=5432',
    ]);
  });
});

describe('synchronous_standby_names', () => {
  it.each([
    ['rookery_queue_wal', '"rookery_queue_wal"'],
    ['Mixed"Case', '"Mixed""Case"'],
  ])('names %s alone, quoted', (name, expected) => {
    expect(synchronousStandbyNamesFor(name)).toBe(expected);
  });

  it.each([
    ['"rookery_queue_wal"', true],
    ['rookery_queue_wal', true],
    ['ROOKERY_QUEUE_WAL', true],
    ['"ROOKERY_QUEUE_WAL"', false],
    ['other, rookery_queue_wal', true],
    ['FIRST 1 (other, "rookery_queue_wal")', true],
    ['any 2 (a, b, rookery_queue_wal)', true],
    ['2 (a, b)', false],
    ['*', true],
    ['', false],
    ['"a,rookery_queue_wal"', false],
  ])('%j lists rookery_queue_wal: %s', (setting, expected) => {
    expect(listsStandby(setting, 'rookery_queue_wal')).toBe(expected);
  });
});
