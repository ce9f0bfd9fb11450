/**
 * At most one validation of a backup per window (issue 16): a validation reads the whole backup,
 * so a backup.completed naming the same backup again — replayed, re-published under a new id, or
 * flooded — must not make the validator read it again and again. The same request (event id)
 * offered again is admitted again: that is a retry after a failure to record its result, not a
 * new request. Kept in memory: a restarted validator starts with an empty window, and the ledger
 * still skips what it has recorded.
 */
export class ValidationRequestWindow {
  /** backup → the request admitted for it and when; in admission order, so the oldest expire first. */
  private readonly admitted = new Map<string, { requestId: string; at: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** True when `requestId` may validate `backup` now (and the backup's window starts); false within another request's window. */
  admit(backup: string, requestId: string): boolean {
    if (this.windowMs <= 0) return true;
    const now = this.now();
    this.forgetExpired(now);
    const previous = this.admitted.get(backup);
    if (previous && previous.requestId !== requestId) return false;
    if (!previous) this.admitted.set(backup, { requestId, at: now });
    return true;
  }

  /** When the backup may be validated again, for messages (null: it may now). */
  openAgainAt(backup: string): Date | null {
    const previous = this.admitted.get(backup);
    return previous ? new Date(previous.at + this.windowMs) : null;
  }

  private forgetExpired(now: number): void {
    for (const [backup, { at }] of this.admitted) {
      if (now - at < this.windowMs) break;
      this.admitted.delete(backup);
    }
  }
}
