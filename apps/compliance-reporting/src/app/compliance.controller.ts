import { Controller, Get, Header, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { EventLedger, LedgerQuery } from '@rookery/catalog';
import { ComplianceLedgerService, TierCompliance, renderCsv, renderDashboard, renderMarkdown } from '@rookery/compliance';
import { ConfigError, TIER_NAMES, TierName, UnknownTierError, isTierName } from '@rookery/core';
import { PublicRoute, READ_ROLES, RequiresRole } from '@rookery/service-kit';

export interface PeriodQuery {
  since?: string;
  until?: string;
}

@ApiTags('compliance')
@Controller()
export class ComplianceController {
  constructor(
    private readonly compliance: ComplianceLedgerService,
    private readonly ledger: EventLedger,
  ) {}

  @Get('health')
  @PublicRoute()
  @ApiOperation({ summary: 'up when the ledger database answers' })
  async health(): Promise<{ status: 'ok'; events: number }> {
    return { status: 'ok', events: await this.ledger.count() };
  }

  @Get('compliance')
  @RequiresRole(READ_ROLES)
  @ApiOperation({
    summary:
      'every tier: last good full, recovery point and RPO exposure, last drill vs RTO, validation coverage, retention adherence, policy lint',
  })
  @ApiQuery({ name: 'since', required: false, description: 'ISO-8601: only events from then' })
  @ApiQuery({ name: 'until', required: false, description: 'ISO-8601: only events until then' })
  @ApiOkResponse({ description: '{ tiers: TierCompliance[] }' })
  async all(@Query() period: PeriodQuery): Promise<{ tiers: TierCompliance[] }> {
    return { tiers: await this.compliance.tiers({ query: ledgerQuery(period) }) };
  }

  @Get('compliance/:tier')
  @RequiresRole(READ_ROLES, { tierFrom: 'param' })
  @ApiOperation({ summary: "one tier's compliance" })
  async one(@Param('tier') tier: string, @Query() period: PeriodQuery): Promise<TierCompliance> {
    return this.compliance.tier(requireTier(tier), { query: ledgerQuery(period) });
  }

  @Get('dashboard')
  @RequiresRole(READ_ROLES)
  @Header('content-type', 'text/html; charset=utf-8')
  @ApiOperation({ summary: 'HTML dashboard: status per tier, backup timeline, RPO exposure over time, drill durations vs RTO' })
  async dashboard(@Query() period: PeriodQuery): Promise<string> {
    return renderDashboard(await this.compliance.tiers({ query: ledgerQuery(period) }));
  }

  @Get('report.md')
  @RequiresRole(READ_ROLES)
  @Header('content-type', 'text/markdown; charset=utf-8')
  @ApiOperation({ summary: 'the exported report (GDPR/SOX evidence) as Markdown' })
  async markdown(@Query() period: PeriodQuery): Promise<string> {
    return renderMarkdown(await this.compliance.tiers({ query: ledgerQuery(period) }), { period });
  }

  @Get('report.csv')
  @RequiresRole(READ_ROLES)
  @Header('content-type', 'text/csv; charset=utf-8')
  @ApiOperation({ summary: 'the exported report as CSV, one row per tier' })
  async csv(@Query() period: PeriodQuery): Promise<string> {
    return renderCsv(await this.compliance.tiers({ query: ledgerQuery(period) }));
  }
}

export function requireTier(tier: string): TierName {
  if (!isTierName(tier)) throw new UnknownTierError(tier, TIER_NAMES);
  return tier;
}

export function ledgerQuery(period: PeriodQuery): LedgerQuery {
  for (const [name, value] of Object.entries(period)) {
    if (value !== undefined && Number.isNaN(Date.parse(value))) {
      throw new ConfigError(`${name} must be an ISO-8601 time, got '${value}'`, [name]);
    }
  }
  return {
    since: period.since ? new Date(period.since).toISOString() : undefined,
    until: period.until ? new Date(period.until).toISOString() : undefined,
  };
}
