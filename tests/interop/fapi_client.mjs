// A department's software written with node's openid-client (an OpenID-certified FAPI 2
// client that nobody on Tell Once wrote), run by tests/interop/test_openid_client.py.
//
// Usage: node fapi_client.mjs SETTINGS.json
// SETTINGS.json holds {issuer, client_id, private_jwk, redirect_uri, authorization_details,
// case_reference, acting_officer}. The program pushes an authorization request (PAR, PKCE,
// private_key_jwt, DPoP, authorization details), prints {"step": "authorize", "url": ...} as
// one JSON line, then reads one line from stdin: the URL the person's browser was sent back
// to. It swaps the code, fetches the data, refreshes, fetches again, introspects, revokes,
// introspects and fetches once more, printing one JSON line per step (never a token itself).
// Any failure prints {"step": "failed", ...} on stderr and exits 1.

import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import * as client from 'openid-client'

function say(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + '\n')
}

async function firstLineOfStdin() {
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    lines.close()
    return line.trim()
  }
  throw new Error('stdin closed before the callback URL arrived')
}

async function signingKey(jwk) {
  // The department's registered key: only its private half is used here, to sign assertions.
  const { kid, ...material } = jwk
  const key = await crypto.subtle.importKey(
    'jwk',
    material,
    { name: 'ECDSA', namedCurve: 'P-256' },
    false,
    ['sign'],
  )
  return { key, kid }
}

async function fetchData(config, settings, accessToken, DPoP) {
  // Errors from the API are answers too: report the status and body rather than throwing.
  try {
    const response = await client.fetchProtectedResource(
      config,
      accessToken,
      new URL(settings.issuer + '/api/v1/data'),
      'GET',
      undefined,
      new Headers({
        'Case-Reference': settings.case_reference,
        'Acting-Officer': settings.acting_officer,
      }),
      { DPoP },
    )
    return { status: response.status, body: await response.json() }
  } catch (error) {
    if (error instanceof client.WWWAuthenticateChallengeError) {
      return { status: error.status, challenges: error.cause.map((c) => c.scheme) }
    }
    throw error
  }
}

async function thumbprint(publicKey) {
  // RFC 7638: SHA-256 of the EC key's required members, in order, as compact JSON.
  const { crv, kty, x, y } = await crypto.subtle.exportKey('jwk', publicKey)
  const members = new TextEncoder().encode(JSON.stringify({ crv, kty, x, y }))
  const digest = await crypto.subtle.digest('SHA-256', members)
  return Buffer.from(digest).toString('base64url')
}

async function introspect(config, token, jkt) {
  const answer = await client.tokenIntrospection(config, token)
  return {
    active: answer.active,
    client_id: answer.client_id,
    token_type: answer.token_type,
    grant_id: answer.grant_id,
    bound_to_our_dpop_key: answer.cnf?.jkt === jkt,
  }
}

function granted(tokens) {
  return {
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    has_refresh_token: typeof tokens.refresh_token === 'string',
    grant_id: tokens.grant_id,
    authorization_details: tokens.authorization_details,
  }
}

async function main() {
  const settings = JSON.parse(await readFile(process.argv[2], 'utf8'))
  const config = await client.discovery(
    new URL(settings.issuer),
    settings.client_id,
    { token_endpoint_auth_method: 'private_key_jwt' },
    client.PrivateKeyJwt(await signingKey(settings.private_jwk)),
    { algorithm: 'oauth2', execute: [client.allowInsecureRequests] },
  )
  const dpopKeys = await client.randomDPoPKeyPair('ES256')
  const DPoP = client.getDPoPHandle(config, dpopKeys)
  const jkt = await thumbprint(dpopKeys.publicKey)

  const pkceCodeVerifier = client.randomPKCECodeVerifier()
  const expectedState = client.randomState()
  const authorizationUrl = await client.buildAuthorizationUrlWithPAR(
    config,
    {
      redirect_uri: settings.redirect_uri,
      code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
      code_challenge_method: 'S256',
      state: expectedState,
      authorization_details: JSON.stringify(settings.authorization_details),
    },
    { DPoP },
  )
  say('authorize', { url: authorizationUrl.href })

  const callback = await firstLineOfStdin()
  const tokens = await client.authorizationCodeGrant(
    config,
    new URL(callback),
    { pkceCodeVerifier, expectedState },
    undefined,
    { DPoP },
  )
  say('token', granted(tokens))
  say('data', await fetchData(config, settings, tokens.access_token, DPoP))

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, {
    DPoP,
  })
  say('refresh', granted(refreshed))
  say('data_after_refresh', await fetchData(config, settings, refreshed.access_token, DPoP))
  say('introspected', await introspect(config, refreshed.access_token, jkt))

  await client.tokenRevocation(config, tokens.refresh_token, {
    token_type_hint: 'refresh_token',
  })
  say('revoked', {})
  say('introspected_after_revoke', await introspect(config, refreshed.access_token, jkt))
  say('data_after_revoke', await fetchData(config, settings, refreshed.access_token, DPoP))
}

main().catch((error) => {
  const failure = {
    step: 'failed',
    name: error?.name,
    code: error?.code,
    message: error?.message,
    error: error?.error,
    error_description: error?.error_description,
    status: error?.status,
    // openid-client wraps oauth4webapi's errors; the wrapped one says what was wrong.
    cause: error?.cause?.message,
    cause_code: error?.cause?.code,
  }
  process.stderr.write(JSON.stringify(failure) + '\n')
  process.exitCode = 1
})
