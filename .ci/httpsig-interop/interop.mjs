// Signs and verifies HTTP requests with the npm package
// http-message-signatures (RFC 9421), for latchkey's interop test
// (cmd/latchkey TestHTTPSigInterop). It reads one JSON request on standard
// input and writes one JSON answer on standard output; keys come on
// standard input, made by the test at run time, and are never written out.
//
//   {"op":"sign","private_key_pem":...,"alg":...,"keyid":...,"method":...,"url":...,"headers":{...},"body":"..."?}
//     -> {"headers":{...}}  the request's headers with Signature-Input, Signature
//        and, with a body, Content-Digest (sha-512, RFC 9530)
//   {"op":"verify","public_key_pem":...,"alg":...,"method":...,"url":...,"headers":{...}}
//     -> {"verified":true|false}
import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { httpbis, createSigner, createVerifier } from 'http-message-signatures';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const req = JSON.parse(Buffer.concat(chunks).toString('utf8'));

async function sign() {
  const headers = { ...req.headers };
  const fields = ['@method', '@target-uri'];
  if (req.body !== undefined && req.body !== null) {
    const digest = createHash('sha512').update(Buffer.from(req.body, 'utf8')).digest('base64');
    headers['content-digest'] = `sha-512=:${digest}:`;
    fields.push('content-digest');
  }
  const key = createSigner(createPrivateKey(req.private_key_pem), req.alg, req.keyid);
  const signed = await httpbis.signMessage({
    key,
    name: 'sig1',
    fields,
    params: ['created', 'nonce', 'keyid', 'alg'],
    paramValues: { nonce: randomBytes(16).toString('base64url') },
  }, { method: req.method, url: req.url, headers });
  return { headers: signed.headers };
}

async function verify() {
  const verifier = createVerifier(createPublicKey(req.public_key_pem), req.alg);
  const ok = await httpbis.verifyMessage({
    keyLookup: async () => ({ id: req.keyid, algs: [req.alg], verify: verifier }),
    requiredParams: ['created', 'nonce', 'keyid'],
    requiredFields: ['@method', '@target-uri'],
    maxAge: 60,
    tolerance: 5,
  }, { method: req.method, url: req.url, headers: req.headers });
  return { verified: ok === true };
}

try {
  const out = req.op === 'sign' ? await sign() : req.op === 'verify' ? await verify() : null;
  if (out === null) throw new Error(`unknown op ${req.op}`);
  process.stdout.write(JSON.stringify(out));
} catch (e) {
  // a refused signature throws in verifyMessage: that is a "no"
  if (req.op === 'verify') {
    process.stdout.write(JSON.stringify({ verified: false, error: String(e.message) }));
  } else {
    process.stderr.write(String(e.stack || e) + '\n');
    process.exit(1);
  }
}
