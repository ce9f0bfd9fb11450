export * from './lib/compliance.service';
export * from './lib/dashboard.render';
export * from './lib/report.render';
export * from './lib/tier-compliance';
