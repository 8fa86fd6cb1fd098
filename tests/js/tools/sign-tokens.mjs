#!/usr/bin/env node
// Independent token factory for the JWT verifier's tests: every token here is signed by jose
// (or, for the DER-signature case, by Node's crypto), never by data-router's own code.
//
//   node sign-tokens.mjs              fresh keys; the valid tokens and the attack set, as JSON
//   node sign-tokens.mjs --fixture    fresh keys; a small fixed-clock set for the no-node tests
//   node sign-tokens.mjs --verify-hs256 SECRET TOKEN
//                                     verifies TOKEN with jose (HS256, SECRET as UTF-8) and
//                                     prints the payload, or exits 1 with the jose error
//
// Output of the first two modes: {now, issuer, audience, secret, jwks, ..., cases:[{name, keys,
// token, expect, claims?}]} where expect is "ok" or the verifier's reason, keys names the key
// configuration the C test uses ("full", "jwks_only", "hs512"), and claims lists what an "ok"
// token must yield.
import crypto from 'node:crypto';
import {
  CompactSign,
  SignJWT,
  UnsecuredJWT,
  base64url,
  exportJWK,
  exportSPKI,
  generateKeyPair,
  jwtVerify,
} from 'jose';

const enc = new TextEncoder();
const b64json = (obj) => base64url.encode(typeof obj === 'string' ? obj : JSON.stringify(obj));

async function verifyHs256(secret, token) {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, enc.encode(secret), {
      algorithms: ['HS256'],
    });
    process.stdout.write(JSON.stringify({ header: protectedHeader, payload }) + '\n');
  } catch (e) {
    process.stderr.write(`jose: ${e.code || e.name}: ${e.message}\n`);
    process.exit(1);
  }
}

async function keyPair(alg) {
  return generateKeyPair(alg, { extractable: true });
}

// Signs an arbitrary payload text (so claims of the wrong type or duplicated ones can be made)
// with the given protected header.
async function signRaw(payloadText, header, key) {
  return new CompactSign(enc.encode(payloadText)).setProtectedHeader(header).sign(key);
}

async function main(fixture) {
  const now = fixture ? 1700000000 : Math.floor(Date.now() / 1000);
  const issuer = 'https://issuer.example';
  const audience = 'data-router';
  const secretText = base64url.encode(crypto.randomBytes(32)); // 43 ASCII chars
  const secret = enc.encode(secretText);
  const rsa = await keyPair('RS256');
  const ec = await keyPair('ES256');
  const rsaOther = await keyPair('RS256');
  const ecOther = await keyPair('ES256');

  const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' };
  const ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  const rsaOtherJwk = { ...(await exportJWK(rsaOther.publicKey)), kid: 'rsa-2', alg: 'RS256' };
  const encJwk = { ...(await exportJWK(ecOther.publicKey)), kid: 'enc-1', use: 'enc' };
  const jwks = { keys: [rsaJwk, ecJwk, encJwk] };

  const base = (extra = {}) => ({
    sub: 'user-42',
    org: 'org-7',
    iss: issuer,
    aud: audience,
    iat: now - 10,
    exp: now + 600,
    ...extra,
  });
  const sign = (payload, header, key) => new SignJWT(payload).setProtectedHeader(header).sign(key);
  const cases = [];
  const add = (name, keys, token, expect, claims) =>
    cases.push({ name, keys, token, expect, ...(claims ? { claims } : {}) });
  const okClaims = (p, alg) => ({
    sub: p.sub ?? null,
    org: p.org ?? p.org_id ?? null,
    rooms: p.rooms ?? [],
    admin: p.role === 'admin' || p.admin === true,
    exp: p.exp,
    alg,
  });

  if (fixture) {
    // Fixed clock; two JWKS versions for reload tests: rsa-2 only exists in jwks_b.
    const p = base();
    return {
      now,
      issuer,
      audience,
      secret: secretText,
      jwks_a: { keys: [rsaJwk, ecJwk] },
      jwks_b: { keys: [rsaJwk, ecJwk, rsaOtherJwk] },
      tokens: {
        rs256: await sign(p, { alg: 'RS256', kid: 'rsa-1' }, rsa.privateKey),
        es256: await sign(p, { alg: 'ES256', kid: 'ec-1' }, ec.privateKey),
        rs256_rotated: await sign(p, { alg: 'RS256', kid: 'rsa-2' }, rsaOther.privateKey),
        hs256: await sign(p, { alg: 'HS256' }, secret),
      },
    };
  }

  // ---- valid tokens ----
  for (const alg of ['HS256', 'HS384', 'HS512']) {
    const p = base({ rooms: ['meeting:p1', 'shipment:1Z999'], role: 'admin', jti: `j-${alg}` });
    add(`${alg.toLowerCase()}_valid`, 'full', await sign(p, { alg, typ: 'JWT' }, secret), 'ok',
        okClaims(p, alg));
  }
  {
    const p = base({ org: undefined, org_id: 'org-id-9', admin: true });
    delete p.org;
    add('rs256_valid', 'full', await sign(p, { alg: 'RS256', kid: 'rsa-1' }, rsa.privateKey),
        'ok', okClaims(p, 'RS256'));
    add('rs256_valid_jwks_only', 'jwks_only',
        await sign(p, { alg: 'RS256', kid: 'rsa-1' }, rsa.privateKey), 'ok', okClaims(p, 'RS256'));
    add('rs256_no_kid_single_key', 'full', await sign(p, { alg: 'RS256' }, rsa.privateKey), 'ok',
        okClaims(p, 'RS256'));
  }
  {
    const p = base({ rooms: [] });
    add('es256_valid', 'full', await sign(p, { alg: 'ES256', kid: 'ec-1' }, ec.privateKey), 'ok',
        okClaims(p, 'ES256'));
  }
  {
    const p = base({ aud: ['other', audience] });
    add('aud_array_contains', 'full', await sign(p, { alg: 'HS256' }, secret), 'ok',
        okClaims(p, 'HS256'));
  }
  {
    const p = base({ exp: now - 30 });
    add('expired_within_leeway', 'full', await sign(p, { alg: 'HS256' }, secret), 'ok',
        okClaims(p, 'HS256'));
  }
  {
    const p = base({ nbf: now + 30 });
    add('nbf_within_leeway', 'full', await sign(p, { alg: 'ES256', kid: 'ec-1' }, ec.privateKey),
        'ok', okClaims(p, 'ES256'));
  }
  {
    const p = base();
    add('hs256_unrelated_kid', 'full', await sign(p, { alg: 'HS256', kid: 'dev' }, secret), 'ok',
        okClaims(p, 'HS256'));
    add('hs512_pinned_hs512', 'hs512', await sign(p, { alg: 'HS512' }, secret), 'ok',
        okClaims(p, 'HS512'));
  }

  // ---- alg=none ----
  const p = base();
  add('alg_none', 'full', new UnsecuredJWT(p).encode(), 'alg_none');
  add('alg_none_uppercase', 'full', `${b64json({ alg: 'NONE' })}.${b64json(p)}.`, 'alg_none');
  const hsValid = await sign(p, { alg: 'HS256' }, secret);
  add('alg_none_with_signature', 'full',
      `${b64json({ alg: 'none' })}.${b64json(p)}.${hsValid.split('.')[2]}`, 'alg_none');

  // ---- algorithm confusion: the RSA public key as an HMAC secret ----
  const pem = await exportSPKI(rsa.publicKey);
  const jwkText = JSON.stringify(rsaJwk);
  add('hs256_rsa_pem_secret_with_kid', 'full',
      await sign(p, { alg: 'HS256', kid: 'rsa-1' }, enc.encode(pem)), 'alg_not_allowed');
  add('hs256_rsa_pem_secret_no_kid', 'full', await sign(p, { alg: 'HS256' }, enc.encode(pem)),
      'bad_signature');
  add('hs256_rsa_pem_secret_no_secret_configured', 'jwks_only',
      await sign(p, { alg: 'HS256' }, enc.encode(pem)), 'alg_not_allowed');
  add('hs256_rsa_jwk_secret_with_kid', 'full',
      await sign(p, { alg: 'HS256', kid: 'rsa-1' }, enc.encode(jwkText)), 'alg_not_allowed');
  add('hs384_ec_kid', 'full', await sign(p, { alg: 'HS384', kid: 'ec-1' }, secret),
      'alg_not_allowed');
  add('rs256_with_ec_kid', 'full', await sign(p, { alg: 'RS256', kid: 'ec-1' }, rsa.privateKey),
      'alg_not_allowed');
  add('es256_with_rsa_kid', 'full', await sign(p, { alg: 'ES256', kid: 'rsa-1' }, ec.privateKey),
      'alg_not_allowed');
  add('rs384_not_allowed', 'full', await sign(p, { alg: 'RS384', kid: 'rsa-1' }, rsa.privateKey),
      'alg_not_allowed');
  add('ps256_not_allowed', 'full', await sign(p, { alg: 'PS256', kid: 'rsa-1' }, rsa.privateKey),
      'alg_not_allowed');
  add('hs256_when_pinned_hs512', 'hs512', await sign(p, { alg: 'HS256' }, secret),
      'alg_not_allowed');
  add('enc_key_not_used', 'full', await sign(p, { alg: 'ES256', kid: 'enc-1' }, ecOther.privateKey),
      'unknown_kid');
  // An attacker-supplied key in the header must never be trusted.
  const embedded = { ...(await exportJWK(rsaOther.publicKey)) };
  add('embedded_jwk_header', 'full',
      await sign(p, { alg: 'RS256', kid: 'rsa-1', jwk: embedded }, rsaOther.privateKey),
      'bad_signature');

  // ---- time ----
  add('expired_beyond_leeway', 'full', await sign(base({ exp: now - 120 }), { alg: 'HS256' },
                                                  secret), 'expired');
  add('expired_rs256', 'full', await sign(base({ exp: now - 3600 }), { alg: 'RS256', kid: 'rsa-1' },
                                          rsa.privateKey), 'expired');
  add('nbf_in_future', 'full', await sign(base({ nbf: now + 300 }), { alg: 'HS256' }, secret),
      'not_yet_valid');
  add('missing_exp', 'full', await signRaw(JSON.stringify({ sub: 'u', iss: issuer, aud: audience }),
                                           { alg: 'HS256' }, secret), 'missing_exp');

  // ---- issuer / audience ----
  add('wrong_aud', 'full', await sign(base({ aud: 'someone-else' }), { alg: 'HS256' }, secret),
      'wrong_audience');
  add('wrong_aud_array', 'full', await sign(base({ aud: ['a', 'b'] }), { alg: 'ES256', kid: 'ec-1' },
                                            ec.privateKey), 'wrong_audience');
  add('wrong_iss', 'full', await sign(base({ iss: 'https://evil.example' }),
                                      { alg: 'RS256', kid: 'rsa-1' }, rsa.privateKey),
      'wrong_issuer');
  {
    const noIss = base();
    delete noIss.iss;
    add('missing_iss', 'full', await sign(noIss, { alg: 'HS256' }, secret), 'wrong_issuer');
  }

  // ---- tampering ----
  const tamper = (tok) => {
    const [h, , s] = tok.split('.');
    return `${h}.${b64json(base({ sub: 'admin', role: 'admin' }))}.${s}`;
  };
  const flipSig = (tok) => {
    const [h, pl, s] = tok.split('.');
    const i = Math.floor(s.length / 2);
    const c = s[i] === 'A' ? 'B' : 'A';
    return `${h}.${pl}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
  };
  const rsValid = await sign(p, { alg: 'RS256', kid: 'rsa-1' }, rsa.privateKey);
  const esValid = await sign(p, { alg: 'ES256', kid: 'ec-1' }, ec.privateKey);
  add('tampered_payload_hs256', 'full', tamper(hsValid), 'bad_signature');
  add('tampered_payload_rs256', 'full', tamper(rsValid), 'bad_signature');
  add('tampered_payload_es256', 'full', tamper(esValid), 'bad_signature');
  add('tampered_signature_rs256', 'full', flipSig(rsValid), 'bad_signature');
  add('tampered_signature_es256', 'full', flipSig(esValid), 'bad_signature');
  // 40 of 43 characters: a canonical spelling of the first 30 MAC bytes
  add('truncated_signature_hs256', 'full', hsValid.slice(0, hsValid.lastIndexOf('.') + 41),
      'bad_signature');
  add('wrong_rsa_key_same_kid', 'full',
      await sign(p, { alg: 'RS256', kid: 'rsa-1' }, rsaOther.privateKey), 'bad_signature');
  add('wrong_hs_secret', 'full',
      await sign(p, { alg: 'HS256' }, enc.encode(base64url.encode(crypto.randomBytes(32)))),
      'bad_signature');
  {
    // ES256 with an ASN.1 DER signature instead of the raw r||s of RFC 7518 §3.4.
    const h = b64json({ alg: 'ES256', kid: 'ec-1' });
    const pl = b64json(p);
    const der = crypto.sign('sha256', Buffer.from(`${h}.${pl}`),
                            { key: ec.privateKey, dsaEncoding: 'der' });
    add('es256_der_signature', 'full', `${h}.${pl}.${base64url.encode(der)}`, 'bad_signature');
    const raw = crypto.sign('sha256', Buffer.from(`${h}.${pl}`),
                            { key: ec.privateKey, dsaEncoding: 'ieee-p1363' });
    add('es256_raw_node_crypto', 'full', `${h}.${pl}.${base64url.encode(raw)}`, 'ok',
        okClaims(p, 'ES256'));
  }

  // ---- keys ----
  add('unknown_kid', 'full', await sign(p, { alg: 'RS256', kid: 'rsa-2' }, rsaOther.privateKey),
      'unknown_kid');
  add('es256_unknown_kid', 'full',
      await sign(p, { alg: 'ES256', kid: 'ec-9' }, ecOther.privateKey), 'unknown_kid');

  // ---- size and structure ----
  add('oversized', 'full',
      await sign(base({ pad: 'x'.repeat(9000) }), { alg: 'HS256' }, secret), 'too_large');
  const [vh, vp, vs] = hsValid.split('.');
  add('two_segments', 'full', `${vh}.${vp}`, 'malformed');
  add('four_segments', 'full', `${hsValid}.${vs}`, 'malformed');
  add('bad_base64_header', 'full', `${vh.slice(0, 4)}*${vh.slice(5)}.${vp}.${vs}`, 'malformed');
  add('padded_header', 'full', `${vh}=.${vp}.${vs}`, 'malformed');
  add('non_json_header', 'full', `${b64json('this is not json')}.${vp}.${vs}`, 'malformed');
  add('header_json_array', 'full', `${b64json('["HS256"]')}.${vp}.${vs}`, 'malformed');
  add('header_trailing_garbage', 'full', `${b64json('{"alg":"HS256"} x')}.${vp}.${vs}`,
      'malformed');
  add('signed_payload_trailing_garbage', 'full',
      await signRaw(`${JSON.stringify(base())}{}`, { alg: 'HS256' }, secret), 'malformed');
  add('signed_payload_trailing_space', 'full',
      await signRaw(`${JSON.stringify(p)}\n `, { alg: 'HS256' }, secret), 'ok', okClaims(p, 'HS256'));
  add('header_without_alg', 'full', `${b64json({ typ: 'JWT' })}.${vp}.${vs}`, 'malformed');
  add('empty_token', 'full', '', 'malformed');
  add('whitespace_inside', 'full', `${vh}. ${vp}.${vs}`, 'malformed');
  add('signed_non_json_payload', 'full', await signRaw('hello', { alg: 'HS256' }, secret),
      'malformed');
  add('signed_array_payload', 'full', await signRaw('[1,2]', { alg: 'HS256' }, secret),
      'malformed');
  add('exp_as_string', 'full',
      await signRaw(JSON.stringify({ ...base(), exp: 'tomorrow' }), { alg: 'HS256' }, secret),
      'malformed');
  add('sub_as_number', 'full',
      await signRaw(JSON.stringify({ ...base(), sub: 42 }), { alg: 'HS256' }, secret),
      'malformed');
  add('rooms_not_strings', 'full',
      await signRaw(JSON.stringify({ ...base(), rooms: ['a', 1] }), { alg: 'HS256' }, secret),
      'malformed');
  add('aud_array_not_strings', 'full',
      await signRaw(JSON.stringify({ ...base(), aud: [audience, {}] }), { alg: 'HS256' }, secret),
      'malformed');
  {
    // Duplicate "exp": cJSON would read the first, other parsers the last.
    const text = JSON.stringify(base()).replace(/}$/, `,"exp":${now + 999999}}`);
    add('duplicate_exp_claim', 'full', await signRaw(text, { alg: 'HS256' }, secret), 'malformed');
  }
  add('kid_not_string', 'full', await sign(p, { alg: 'HS256', kid: 7 }, secret), 'malformed');
  add('crit_header', 'full', await sign(p, { alg: 'HS256', b64: true, crit: ['b64'] }, secret),
      'malformed');
  add('duplicate_alg_header', 'full',
      `${base64url.encode('{"alg":"HS256","alg":"none"}')}.${vp}.${vs}`, 'malformed');

  return { now, issuer, audience, secret: secretText, jwks, cases };
}

const args = process.argv.slice(2);
if (args[0] === '--verify-hs256') {
  await verifyHs256(args[1], args[2]);
} else {
  process.stdout.write(JSON.stringify(await main(args[0] === '--fixture')) + '\n');
}
