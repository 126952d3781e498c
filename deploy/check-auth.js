'use strict';

// A local Serverless Framework plugin, loaded by serverless.yml. It gives the
// variable ${auth:mode}: the stage's auth parameter ("jwt" or "none"), once
// checked. serverless.yml picks the receiver's route and the authorizers by
// it, so a stage cannot be packaged (or deployed) with a JWT authorizer that
// has no issuer or no audience: the framework stops, with this plugin's
// message, before anything is built. Without the check such a stage would
// fail only in CloudFormation, half-way through a deploy. With ingest=url the
// receiver verifies tokens itself, against the same issuer and audience, and
// the same check holds: a receiver without them would not start.
//
// It also gives ${ingest:mode}: the ingest parameter ("api" or "url"), once
// checked. Anything else stops packaging: serverless.yml selects the
// receiver's events and environment by it, and a value it does not know
// would otherwise fail with a message naming no parameter.
//
// A variable and not a lifecycle hook: the framework validates the resolved
// configuration against its schema before any hook runs, and an empty issuer
// would fail there with a message that names no parameter.
const ServerlessError = require('serverless/lib/serverless-error');

// Commands that read or remove a deployed stack and build nothing: they must
// work without the stage's issuer and audience at hand, so for them an
// incomplete authorizer is left out (the framework's schema would refuse it)
// instead of refused. Every other command is checked.
const buildsNothing = new Set(['info', 'logs', 'metrics', 'remove', 'invoke']);

const ingestModes = ['api', 'url'];

// ingestMode is the stage's ingest parameter, refused unless known.
async function ingestMode(resolveVariable) {
  const ingest = await resolveVariable('param:ingest');
  if (!ingestModes.includes(ingest)) {
    const stage = await resolveVariable('sls:stage');
    throw new ServerlessError(
      `Stage "${stage}": --param ingest=${ingest} is neither "api" (the HTTP API) nor "url" (the receiver's function URL).`,
      'VOTES_INGEST_UNKNOWN'
    );
  }
  return ingest;
}

class CheckAuth {
  constructor(serverless) {
    const command = ((serverless.processedInput || {}).commands || [])[0];
    this.configurationVariablesSources = {
      ingest: {
        resolve: async ({ address, resolveVariable }) => {
          if (address !== 'mode') {
            throw new ServerlessError(`\${ingest:${address}}: the only address is "mode"`, 'VOTES_INGEST_ADDRESS');
          }
          return { value: await ingestMode(resolveVariable) };
        },
      },
      auth: {
        resolve: async ({ address, resolveVariable }) => {
          if (address !== 'mode') {
            throw new ServerlessError(`\${auth:${address}}: the only address is "mode"`, 'VOTES_AUTH_ADDRESS');
          }
          const stage = await resolveVariable('sls:stage');
          const auth = await resolveVariable('param:auth');
          if (auth !== 'jwt' && auth !== 'none') {
            throw new ServerlessError(
              `Stage "${stage}": --param auth=${auth} is neither "jwt" nor "none".`,
              'VOTES_AUTH_UNKNOWN'
            );
          }
          if (auth === 'none') return { value: auth };
          const issuer = String((await resolveVariable('param:jwtIssuer')) || '');
          const audience = String((await resolveVariable('param:jwtAudience')) || '');
          const missing = [];
          if (!/^https:\/\/[^\s/]+/.test(issuer)) {
            missing.push({ name: 'issuer', hint: "--param jwtIssuer=https://… (the identity provider's issuer URL, https as OpenID Connect requires)" });
          }
          if (audience.trim() === '') {
            missing.push({ name: 'audience', hint: '--param jwtAudience=… (the audience its tokens carry for this API)' });
          }
          if (missing.length > 0 && buildsNothing.has(command)) return { value: 'none' };
          if (missing.length > 0) {
            const verifier =
              (await ingestMode(resolveVariable)) === 'url'
                ? 'has the receiver verify the JWT of POST /votes itself (ingest=url, auth=jwt, the default outside dev)'
                : 'puts the JWT authorizer on POST /votes (auth=jwt, the default outside dev)';
            throw new ServerlessError(
              `Stage "${stage}" ${verifier} ` +
                `without its ${missing.map((m) => m.name).join(' and ')}. ` +
                `Pass ${missing.map((m) => m.hint).join(' and ')}; or, to take the body's voterId on trust, --param auth=none.`,
              'VOTES_JWT_AUTHORIZER_INCOMPLETE'
            );
          }
          return { value: auth };
        },
      },
    };
  }
}

module.exports = CheckAuth;
