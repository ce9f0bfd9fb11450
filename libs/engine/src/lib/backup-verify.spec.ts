import { parsePgManifestFiles } from './backup-verify.service';

describe('parsePgManifestFiles', () => {
  it('counts the files of a PostgreSQL backup manifest', () => {
    const manifest = {
      'PostgreSQL-Backup-Manifest-Version': 1,
      Files: [{ Path: 'PG_VERSION' }, { Path: 'global/pg_control' }],
      'WAL-Ranges': [],
    };
    expect(parsePgManifestFiles(JSON.stringify(manifest))).toBe(2);
  });

  it('says null for damaged text or JSON that is not a backup manifest', () => {
    expect(parsePgManifestFiles('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": [')).toBeNull();
    expect(parsePgManifestFiles('{"Files": []}')).toBeNull();
    expect(parsePgManifestFiles('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": 3}')).toBeNull();
  });
});
