import { ConfigError } from '@rookery/core';
import { portFlag, startFailure } from './service-app.factory';

describe('portFlag', () => {
  it.each([
    [[], undefined],
    [['--port', '8081'], 8081],
    [['--port=9090'], 9090],
    [['--other', 'x', '--port', '0'], 0],
  ])('%j → %s', (argv, port) => {
    expect(portFlag(argv)).toBe(port);
  });

  it.each([[['--port']], [['--port', 'eighty']], [['--port=-1']]])('%j is a ConfigError', (argv) => {
    expect(() => portFlag(argv)).toThrow(ConfigError);
  });
});

describe('startFailure', () => {
  it('is one line: a RookeryError with its hint, else the first line of the message', () => {
    expect(startFailure(new ConfigError('bad\nconfig', [], { hint: 'fix it' }))).toBe('bad config (fix it)');
    expect(startFailure(new Error('QueryFailedError: duplicate key\n    at stack'))).toBe('QueryFailedError: duplicate key');
    expect(startFailure('plain')).toBe('plain');
  });
});
