import { BackupManifest, IntegrityError, RestoreTargetError, ObjectInfo, ToolFailedError } from '@rookery/core';
import { BackupListing, repositoryLayout } from '@rookery/repository';
import { makeManifest } from '@rookery/testing';
import type { BackupVerifyService } from './backup-verify.service';
import type { EngineContext } from './engine.context';
import { LATEST_CANDIDATES_VERIFIED, LatestBackupService, LatestRestoreRequest } from './latest-backup.service';
import type { RecoveryPlanService } from './recovery-plan.service';

/**
 * Which backup the hint of a failed `restore --backup latest` names, with strict fakes of the
 * repository (a listing, object sizes), of verify (which backups re-read clean) and of the planner
 * (which backups reach a target): the newest older one that verifies, no more than
 * LATEST_CANDIDATES_VERIFIED looked at, and never the failed one or a newer one.
 */
const backupAt = (hour: number) =>
  makeManifest({
    id: `20261126T${String(hour).padStart(2, '0')}0000Z-oltp`,
    startedAt: `2026-11-26T${String(hour).padStart(2, '0')}:00:00.000Z`,
  });

function service(options: {
  backups: BackupManifest[];
  damaged?: BackupListing['damaged'];
  sizes?: Record<string, number | null>;
  clean?: string[];
  reaching?: string[];
}) {
  const verified: string[] = [];
  const listing: BackupListing = { backups: options.backups, damaged: options.damaged ?? [] };
  const repository = {
    list: async () => listing,
    artifactKey: (manifest: BackupManifest, name: string) =>
      repositoryLayout.artifactKey(manifest.tier, manifest.id, new Date(manifest.startedAt), name),
    store: {
      stat: async (key: string): Promise<ObjectInfo | null> => {
        const id = repositoryLayout.backupIdOf(key) as string;
        const size = options.sizes && id in options.sizes ? options.sizes[id] : 1_000_000_000;
        return size === null ? null : ({ key, size } as ObjectInfo);
      },
    },
  };
  const verifier = {
    verify: async (_tier: string, id: string) => {
      verified.push(id);
      return { ok: (options.clean ?? []).includes(id) };
    },
  };
  const planner = {
    plan: async (_tier: string, _target: unknown, id: string) => {
      if (!(options.reaching ?? []).includes(id)) throw new RestoreTargetError(`backup '${id}' cannot reach the target`);
      return {};
    },
  };
  const latest = new LatestBackupService(
    { repository } as unknown as EngineContext,
    verifier as unknown as BackupVerifyService,
    planner as unknown as RecoveryPlanService,
  );
  return { latest, verified };
}

const physical: LatestRestoreRequest = { tier: 'oltp', method: 'physical' };
const hintOf = async (work: Promise<unknown>) => {
  const error = await work.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(IntegrityError);
  return (error as IntegrityError).hint;
};

describe('LatestBackupService', () => {
  const [b1, b2, b3, b4, b5] = [1, 2, 3, 4, 5].map(backupAt);

  it('passes a newest backup whose artifacts are all there at their recorded sizes', async () => {
    const { latest, verified } = service({ backups: [b1, b2] });
    await expect(latest.preflight(physical, [b2])).resolves.toBeUndefined();
    expect(verified).toEqual([]);
  });

  it('an artifact of the newest missing or of another size: fails before anything is written, naming the newest older one that verifies', async () => {
    for (const size of [null, 4096]) {
      const { latest, verified } = service({ backups: [b1, b2, b3], sizes: { [b3.id]: size }, clean: [b1.id] });
      const error = await latest.preflight(physical, [b3]).catch((caught: unknown) => caught);
      expect((error as Error).message).toMatch(
        new RegExp(
          `^newest backup '${b3.id}' of tier 'oltp' fails verification: artifact 'base.tar.zst' of backup '${b3.id}' (is missing|has 4096 bytes)`,
        ),
      );
      expect((error as IntegrityError).hint).toContain(`the newest backup that verifies is '${b1.id}'`);
      expect(verified).toEqual([b2.id, b1.id]);
    }
  });

  it(`looks at no more than ${LATEST_CANDIDATES_VERIFIED} older backups`, async () => {
    const { latest, verified } = service({ backups: [b1, b2, b3, b4, b5], sizes: { [b5.id]: null }, clean: [b1.id] });
    expect(await hintOf(latest.preflight(physical, [b5]))).toMatch(/^none of the 3 next newest backups verifies either/);
    expect(verified).toEqual([b4.id, b3.id, b2.id]);
  });

  it('says so when there is no older backup to take its place', async () => {
    const { latest } = service({ backups: [b1], sizes: { [b1.id]: null } });
    expect(await hintOf(latest.preflight(physical, [b1]))).toBe(
      "no older backup of tier 'oltp' can take its place; repair it, or take a new backup",
    );
  });

  it('a damaged manifest newer than the chosen backup fails it too; the chosen one may be the one that verifies', async () => {
    const damaged = [
      {
        key: repositoryLayout.manifestKey('oltp', b3.id, new Date(b3.startedAt)),
        problem: `manifest of ${b3.id} does not match its checksum`,
      },
    ];
    const { latest } = service({ backups: [b1, b2], damaged, clean: [b2.id] });
    const error = await latest.preflight(physical, [b2]).catch((caught: unknown) => caught);
    expect((error as Error).message).toBe(
      `newest backup '${b3.id}' of tier 'oltp' fails verification: manifest of ${b3.id} does not match its checksum`,
    );
    expect((error as IntegrityError).hint).toContain(`the newest backup that verifies is '${b2.id}'`);
    // With a target other than the end of the archive, a newer backup is not the one to take anyway.
    await expect(latest.preflight({ ...physical, target: { kind: 'lsn', lsn: 0x3000000n } as const }, [b2])).resolves.toBeUndefined();
  });

  it('with a recovery target, only older backups that reach it are candidates (and counted)', async () => {
    const { latest, verified } = service({
      backups: [b1, b2, b3, b4],
      sizes: { [b4.id]: null },
      clean: [b1.id, b3.id],
      reaching: [b1.id, b2.id],
    });
    const target = { kind: 'lsn', lsn: 0x3000000n } as const;
    expect(await hintOf(latest.preflight({ ...physical, target }, [b4]))).toContain(`the newest backup that verifies is '${b1.id}'`);
    expect(verified).toEqual([b2.id, b1.id]);
  });

  it('blames the backup for a failure of its bytes, and for a tool failing on bytes that do not verify; passes anything else through', async () => {
    const checksum = new IntegrityError("checksum mismatch for artifact 'base.tar.zst'");
    const tar = new ToolFailedError('tar', 2, 'tar: Skipping to next header');
    const elsewhere = new RestoreTargetError('restore directory is not empty');

    const damaged = service({ backups: [b1, b2], clean: [b1.id] });
    const blamed = await damaged.latest.explain(physical, b2, checksum);
    expect(blamed).toBeInstanceOf(IntegrityError);
    expect((blamed as IntegrityError).message).toBe(
      `newest backup '${b2.id}' of tier 'oltp' fails verification: checksum mismatch for artifact 'base.tar.zst'`,
    );
    expect((blamed as IntegrityError).cause).toBe(checksum);
    expect(await damaged.latest.explain(physical, b2, tar)).toBeInstanceOf(IntegrityError);
    expect(await damaged.latest.explain(physical, b2, elsewhere)).toBe(elsewhere);

    // tar failed, but the backup re-reads clean: the backup is not to blame.
    const sound = service({ backups: [b1, b2], clean: [b1.id, b2.id] });
    expect(await sound.latest.explain(physical, b2, tar)).toBe(tar);
  });
});
