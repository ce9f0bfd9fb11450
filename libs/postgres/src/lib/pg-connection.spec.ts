import { ConfigError } from '@rookery/core';
import { connectionFromUrl, quoteConninfoValue } from './pg-connection';

describe('connectionFromUrl', () => {
  it.each([
    [
      'postgres://backup:s3cr%40t@db.example:6432/penguinmails_oltp?sslmode=require',
      'host=db.example port=6432 user=backup dbname=penguinmails_oltp',
      { PGPASSWORD: 's3cr@t', PGSSLMODE: 'require' },
      'db.example:6432/penguinmails_oltp',
    ],
    [
      'postgresql://postgres@127.0.0.1:5433/postgres',
      'host=127.0.0.1 port=5433 user=postgres dbname=postgres',
      {},
      '127.0.0.1:5433/postgres',
    ],
    ['postgres://[::1]:5432/app', 'host=::1 port=5432 dbname=app', {}, '::1:5432/app'],
    ['postgres:///app?host=/var/run/postgresql', 'dbname=app host=/var/run/postgresql', {}, '/var/run/postgresql:5432/app'],
    [
      "postgres://o'brien@h/my%20db?application_name=rookery&connect_timeout=5",
      "host=h user='o\\'brien' dbname='my db'",
      { PGAPPNAME: 'rookery', PGCONNECT_TIMEOUT: '5' },
      'h:5432/my db',
    ],
  ])('splits %s', (url, conninfo, env, target) => {
    const connection = connectionFromUrl(url);
    expect(connection.conninfo).toBe(conninfo);
    expect(connection.env).toEqual(env);
    expect(connection.target).toBe(target);
  });

  it('keeps the password out of conninfo and target', () => {
    const connection = connectionFromUrl('postgres://u:hunter2@h:1/d');
    expect(connection.conninfo).not.toContain('hunter2');
    expect(connection.target).not.toContain('hunter2');
  });

  it.each([['not a url'], ['mysql://h/d'], ['postgres://h/d?sslmode=require&fancy=1']])(
    'rejects %s with a ConfigError that does not leak the password',
    (url) => {
      expect(() => connectionFromUrl(url.replace('//h', '//u:pw@h'))).toThrow(ConfigError);
      try {
        connectionFromUrl(url.replace('//h', '//u:pw@h'));
      } catch (error) {
        expect((error as Error).message).not.toContain(':pw@');
      }
    },
  );
});

describe('quoteConninfoValue', () => {
  it.each([
    ['plain', 'plain'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it\\'s'"],
    ['back\\slash', "'back\\\\slash'"],
    ['/tmp/sock', '/tmp/sock'],
  ])('%j → %s', (value, quoted) => {
    expect(quoteConninfoValue(value)).toBe(quoted);
  });
});
