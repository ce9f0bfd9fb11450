import { StorageAccessDeniedError, StorageConflictError, StorageNotFoundError, StorageUnavailableError } from '@rookery/core';
import { translateFsError, withoutFirstBytes } from './fs-store.driver';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: failed`), { code });
}

describe('translateFsError', () => {
  it.each([
    ['ENOENT', StorageNotFoundError],
    ['EEXIST', StorageConflictError],
    ['EACCES', StorageAccessDeniedError],
    ['EPERM', StorageAccessDeniedError],
    ['ENOSPC', StorageUnavailableError],
    ['EROFS', StorageUnavailableError],
    ['EIO', StorageUnavailableError],
  ])('translates %s', (code, expected) => {
    const error = errno(code);
    const translated = translateFsError(error, "write of object 'a/b'", 'a/b');
    expect(translated).toBeInstanceOf(expected);
    expect(translated.cause).toBe(error);
  });

  it('names the operation and object', () => {
    expect(translateFsError(errno('ENOSPC'), "write of object 'a/b'", 'a/b').message).toBe("write of object 'a/b' failed: ENOSPC");
    expect(translateFsError(errno('EIO'), "write of object 'a/b'", 'a/b').retryable).toBe(true);
    expect(translateFsError(errno('ENOSPC'), "write of object 'a/b'", 'a/b').retryable).toBe(false);
  });
});

describe('withoutFirstBytes (what a short writev leaves to write)', () => {
  const parts = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
  const text = (buffers: Buffer[]) => Buffer.concat(buffers).toString();

  it('drops whole buffers and cuts into the first one still partly unwritten', () => {
    expect(text(withoutFirstBytes(parts, 0))).toBe('abcdefgh');
    expect(text(withoutFirstBytes(parts, 2))).toBe('cdefgh');
    expect(text(withoutFirstBytes(parts, 3))).toBe('defgh');
    expect(text(withoutFirstBytes(parts, 4))).toBe('efgh');
    expect(withoutFirstBytes(parts, 8)).toEqual([]);
  });
});
