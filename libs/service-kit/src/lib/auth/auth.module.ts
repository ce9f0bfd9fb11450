import { DynamicModule, Logger, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { BearerAuthenticator } from '@rookery/auth';
import type { RookeryConfig } from '@rookery/config';
import { ConfigError } from '@rookery/core';
import { AUTHENTICATOR, AuthGuard } from './auth.guard';

/**
 * Authentication for a service's routes (global): AuthGuard on every route and the authenticator
 * the config describes. `auth.mode: required` (the default) with neither a token file nor a JWT
 * issuer is a config error at start, so a service never runs open by omission.
 */
@Module({})
export class AuthModule {
  static forRoot(config: RookeryConfig): DynamicModule {
    return {
      module: AuthModule,
      global: true,
      providers: [
        {
          provide: AUTHENTICATOR,
          useFactory: async () => {
            const { auth } = config;
            if (auth.mode === 'none') {
              new Logger(AuthModule.name).warn(
                'AUTHENTICATION IS OFF (auth.mode: none): anyone who reaches this service can start backups, drills and replication and read every report',
              );
              return null;
            }
            if (!auth.tokenFile && !auth.jwt) {
              throw new ConfigError(`invalid config in ${config.source}: auth: no token file and no JWT issuer`, ['auth'], {
                hint: 'set auth.tokenFile (rookery auth token create) or auth.jwt, or auth.mode: none to run without authentication',
              });
            }
            return BearerAuthenticator.create(auth);
          },
        },
        { provide: APP_GUARD, useClass: AuthGuard },
      ],
      exports: [AUTHENTICATOR],
    };
  }
}
