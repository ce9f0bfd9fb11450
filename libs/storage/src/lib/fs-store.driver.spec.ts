import { StorageAccessDeniedError, StorageConflictError, StorageNotFoundError, StorageUnavailableError } from '@rookery/core';
import { translateFsError } from './fs-store.driver';

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
