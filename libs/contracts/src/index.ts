export * from './lib/proto-files';
export type { ProtoGrpcType as BackupProto } from './generated/backup';
export type { ProtoGrpcType as RestoreProto } from './generated/restore';
export type { ProtoGrpcType as HoldProto } from './generated/hold';
export type { ProtoGrpcType as RetentionProto } from './generated/retention';
export type { ProtoGrpcType as DrillProto } from './generated/drill';
export type { ProtoGrpcType as ComplianceProto } from './generated/compliance';
export type * from './lib/messages';
