import { ValidationRequestWindow } from './validation-request.window';

describe('ValidationRequestWindow', () => {
  const clock = (start = 0) => {
    let now = start;
    return { now: () => now, advance: (ms: number) => (now += ms) };
  };

  it('admits one request per backup per window; the same request again (a retry) is admitted', () => {
    const time = clock();
    const window = new ValidationRequestWindow(60_000, time.now);
    expect(window.admit('oltp/b1', 'event-1')).toBe(true);
    expect(window.admit('oltp/b1', 'event-2')).toBe(false);
    expect(window.admit('oltp/b1', 'event-1')).toBe(true);
    expect(window.admit('oltp/b2', 'event-3')).toBe(true);
    expect(window.openAgainAt('oltp/b1')).toEqual(new Date(60_000));
    time.advance(59_999);
    expect(window.admit('oltp/b1', 'event-4')).toBe(false);
    time.advance(1);
    expect(window.admit('oltp/b1', 'event-4')).toBe(true);
    expect(window.admit('oltp/b1', 'event-5')).toBe(false);
  });

  it.each([
    ['a flood of forged requests', 1_000, 1],
    ['requests spread over three windows', 3, 3],
  ])('validates at most once per window under %s', (_case, count, expected) => {
    const time = clock();
    const window = new ValidationRequestWindow(1_000, time.now);
    let admitted = 0;
    for (let index = 0; index < count; index++) {
      if (window.admit('olap/b', `event-${index}`)) admitted++;
      time.advance(count === 3 ? 1_000 : 0);
    }
    expect(admitted).toBe(expected);
  });

  it('forgets expired backups (bounded memory) and admits everything with a window of 0', () => {
    const time = clock();
    const window = new ValidationRequestWindow(10, time.now);
    for (let index = 0; index < 100; index++) window.admit(`oltp/b${index}`, 'e');
    time.advance(10);
    window.admit('oltp/new', 'e');
    expect(window.openAgainAt('oltp/b0')).toBeNull();
    const open = new ValidationRequestWindow(0, time.now);
    expect([open.admit('oltp/b', 'e1'), open.admit('oltp/b', 'e2')]).toEqual([true, true]);
  });
});
