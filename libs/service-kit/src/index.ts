export * from './lib/backups/backup-jobs.service';
export * from './lib/backups/backup-record.dto';
export * from './lib/errors/rookery-error.filter';
export * from './lib/health/service-health.service';
export * from './lib/metrics/backup-metrics.service';
export * from './lib/service-app.factory';
export * from './lib/service-kit.constants';
export * from './lib/service-kit.module';
export { REDACTED_PATHS } from './lib/service-logger.options';
