import {
  IntegrityError,
  LegalHold,
  RecordSignature,
  SigningKeyring,
  Store,
  TierName,
  requiresSignatures,
  signRecord,
  signatureProblem,
} from '@rookery/core';
import { repositoryLayout } from './repository.layout';

/**
 * Legal holds live in the repository, next to what they protect (`<tier>/holds/<backupId>.json`),
 * so every expire — the CLI's, any service's, one run from the secondary region after a disaster —
 * sees the same holds without a catalog. A hold is one small object: placing it is a write,
 * releasing it a remove. A marker that does not parse still holds its backup (the file name
 * names it): a damaged hold must never let a backup go. With a signing keyring, a hold is signed
 * when placed; one whose signature is missing or wrong still holds its backup, but its content
 * (reason, who, when) is not believed and it says so.
 */
export class LegalHoldRepository {
  constructor(
    readonly store: Store,
    private readonly keyring: SigningKeyring | null = null,
  ) {}

  async place(hold: LegalHold): Promise<LegalHold> {
    const signing = this.keyring?.signing;
    const stored = signing ? { ...hold, signature: signRecord('legal-hold', hold, signing) } : hold;
    await this.store.write(repositoryLayout.holdKey(hold.tier, hold.backupId), Buffer.from(`${JSON.stringify(stored, null, 2)}\n`));
    return hold;
  }

  /** Removes the hold; resolves with what it was, or null when the backup was not held. */
  async release(tier: TierName, backupId: string): Promise<LegalHold | null> {
    const current = await this.get(tier, backupId);
    if (current) await this.store.remove(repositoryLayout.holdKey(tier, backupId));
    return current;
  }

  async get(tier: TierName, backupId: string): Promise<LegalHold | null> {
    const key = repositoryLayout.holdKey(tier, backupId);
    if (!(await this.store.stat(key))) return null;
    return this.readHold(key, tier, backupId);
  }

  /** Every hold of the tier, by backup id. */
  async list(tier: TierName): Promise<LegalHold[]> {
    const holds: LegalHold[] = [];
    const prefix = repositoryLayout.holdsPrefix(tier);
    for await (const object of this.store.list(prefix)) {
      const name = object.key.slice(prefix.length);
      if (!name.endsWith('.json') || name.includes('/')) continue;
      holds.push(await this.readHold(object.key, tier, name.slice(0, -'.json'.length)));
    }
    return holds.sort((a, b) => a.backupId.localeCompare(b.backupId));
  }

  private signatureProblem(parsed: Partial<LegalHold> & { signature?: RecordSignature }): string | null {
    if (!requiresSignatures(this.keyring)) return null;
    const { signature, ...body } = parsed;
    return signatureProblem('legal-hold', body, signature, this.keyring);
  }

  private async readHold(key: string, tier: TierName, backupId: string): Promise<LegalHold> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.store.read(key)) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
    try {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Partial<LegalHold> & { signature?: RecordSignature };
      if (parsed.backupId !== backupId || parsed.tier !== tier) throw new IntegrityError(`hold '${key}' names another backup`);
      const problem = this.signatureProblem(parsed);
      if (problem) {
        return {
          backupId,
          tier,
          reason: `hold marker '${key}' ${problem}; the backup stays held until it is released`,
          heldBy: 'unknown',
          heldAt: '',
        };
      }
      return {
        backupId,
        tier,
        reason: String(parsed.reason ?? ''),
        heldBy: String(parsed.heldBy ?? 'unknown'),
        heldAt: String(parsed.heldAt ?? ''),
      };
    } catch {
      return {
        backupId,
        tier,
        reason: `hold marker '${key}' is damaged; the backup stays held until it is released`,
        heldBy: 'unknown',
        heldAt: '',
      };
    }
  }
}
