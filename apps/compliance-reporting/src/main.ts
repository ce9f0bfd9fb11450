import 'reflect-metadata';
import { runService } from '@rookery/service-kit';
import { ComplianceReportingModule } from './app/compliance-reporting.module';

runService({
  name: 'compliance-reporting',
  title: 'rookery compliance-reporting',
  description: 'RPO/RTO/retention evidence per tier from the event ledger: JSON, an HTML dashboard, Markdown and CSV reports',
  module: (config) => ComplianceReportingModule.forRoot({ config }),
});
