/**
 * A Standard Webhooks secret as senders show it: `whsec_<base64 key>`, the key being the
 * decoded part. Here, below config and triggers, because both read it: the config refuses
 * a secret that is not one, and the verifier signs with the key.
 *
 * Returns undefined when `secret` is not `whsec_` + non-empty, canonical-length base64.
 */
export function whsecKey(secret: string): Buffer | undefined {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret.trim());
  if (!m || m[1]!.length % 4 !== 0) return undefined;
  const key = Buffer.from(m[1]!, 'base64');
  return key.length > 0 ? key : undefined;
}
