import { Controller } from '@nestjs/common';
import { GrpcMethod, Payload } from '@nestjs/microservices';
import { ComplianceLedgerService, renderCsv, renderMarkdown } from '@rookery/compliance';
import type { GetReportRequest__Output, GetTierComplianceRequest__Output, Report, TierCompliance } from '@rookery/contracts';
import { ConfigError } from '@rookery/core';
import { READ_ROLES, RequiresRole, toMessage } from '@rookery/service-kit';
import { ledgerQuery, requireTier } from './compliance.controller';

/**
 * rookery.v1.ComplianceService: GET /compliance/:tier and GET /report.md|csv over gRPC, with the
 * same roles. A tier's compliance reads the tier from the request; the report covers every tier,
 * so a principal scoped to tiers is refused it, as on REST.
 */
@Controller()
export class ComplianceGrpcController {
  constructor(private readonly compliance: ComplianceLedgerService) {}

  @GrpcMethod('ComplianceService', 'GetTierCompliance')
  @RequiresRole(READ_ROLES, { tierFrom: 'body' })
  async getTierCompliance(@Payload() request: GetTierComplianceRequest__Output): Promise<TierCompliance> {
    const { since, until } = request;
    return toMessage(await this.compliance.tier(requireTier(request.tier), { query: ledgerQuery({ since, until }) }));
  }

  @GrpcMethod('ComplianceService', 'GetReport')
  @RequiresRole(READ_ROLES)
  async getReport(@Payload() request: GetReportRequest__Output): Promise<Report> {
    const { since, until } = request;
    if (request.format !== 'markdown' && request.format !== 'csv') {
      throw new ConfigError(`format: '${request.format}' is not a report format (markdown, csv)`, ['format']);
    }
    const tiers = await this.compliance.tiers({ query: ledgerQuery({ since, until }) });
    return request.format === 'markdown'
      ? { format: 'markdown', contentType: 'text/markdown; charset=utf-8', text: renderMarkdown(tiers, { period: { since, until } }) }
      : { format: 'csv', contentType: 'text/csv; charset=utf-8', text: renderCsv(tiers) };
  }
}
