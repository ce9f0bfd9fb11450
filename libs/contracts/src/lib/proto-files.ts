import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The protobuf package of every rookery gRPC service. */
export const ROOKERY_PROTO_PACKAGE = 'rookery.v1';

/** The rookery.v1 services and the proto file each is declared in (relative to PROTO_ROOT). */
export const ROOKERY_SERVICES = {
  BackupService: 'rookery/v1/backup.proto',
  RestoreService: 'rookery/v1/restore.proto',
  HoldService: 'rookery/v1/hold.proto',
  RetentionService: 'rookery/v1/retention.proto',
  DrillService: 'rookery/v1/drill.proto',
  ComplianceService: 'rookery/v1/compliance.proto',
} as const;

export type RookeryServiceName = keyof typeof ROOKERY_SERVICES;

/** Every proto file of the package, for a loader that serves or calls all of them. */
export const ROOKERY_PROTO_FILES: readonly string[] = [...new Set(Object.values(ROOKERY_SERVICES)), 'rookery/v1/records.proto'];

/**
 * The directory the protos are imported from ('rookery/v1/…'): beside the sources (libs/contracts/proto)
 * when run from them, else the repository's copy when run from the compiled dist/libs/contracts.
 */
export const PROTO_ROOT: string =
  [join(__dirname, '..', '..', 'proto'), join(__dirname, '..', '..', '..', '..', '..', 'libs', 'contracts', 'proto')].find((candidate) =>
    existsSync(join(candidate, 'rookery', 'v1', 'records.proto')),
  ) ?? join(__dirname, '..', '..', 'proto');

/**
 * How every server and client loads the protos: camelCase fields (the REST JSON names), int64 as
 * numbers, enums as names, defaults filled in, and the oneof's case named. The generated types
 * (src/generated) are made with the same options: keep them in step (contracts.spec checks it).
 */
export const PROTO_LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** proto-loader-gen-types arguments that match PROTO_LOADER_OPTIONS (run in libs/contracts). */
export const GENERATE_TYPES_ARGUMENTS: readonly string[] = [
  '--longs=Number',
  '--enums=String',
  '--defaults',
  '--oneofs',
  '--grpcLib=@grpc/grpc-js',
  '-I',
  'proto',
];
