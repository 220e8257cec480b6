import { LookupFailed, type ProviderClient } from './http.js';
import type { CheckResult, Subscription } from './store.js';

/**
 * The two store APIs, each reduced to "what is this subscription's status and expiry now".
 * Statuses are normalised to one vocabulary: active, grace, billing_retry, on_hold, paused,
 * canceled (auto-renew off, still paid up to expiresAt), pending, expired, revoked.
 */

export interface Provider {
  lookup(sub: Subscription): Promise<CheckResult>;
}

/** App Store Server API, Get All Subscription Statuses: `lastTransactions[].status`. */
const APPSTORE_STATUS: Record<number, string> = { 1: 'active', 2: 'expired', 3: 'billing_retry', 4: 'grace', 5: 'revoked' };

/** Google Play `SubscriptionPurchaseV2.subscriptionState`. */
const PLAY_STATE: Record<string, string> = {
  SUBSCRIPTION_STATE_ACTIVE: 'active',
  SUBSCRIPTION_STATE_CANCELED: 'canceled',
  SUBSCRIPTION_STATE_IN_GRACE_PERIOD: 'grace',
  SUBSCRIPTION_STATE_ON_HOLD: 'on_hold',
  SUBSCRIPTION_STATE_PAUSED: 'paused',
  SUBSCRIPTION_STATE_EXPIRED: 'expired',
  SUBSCRIPTION_STATE_PENDING: 'pending',
  SUBSCRIPTION_STATE_PENDING_PURCHASE_CANCELED: 'expired',
};

interface AppStoreStatuses {
  data?: Array<{ lastTransactions?: Array<{ originalTransactionId?: string; status?: number; signedTransactionInfo?: string }> }>;
}

/** `GET /inApps/v1/subscriptions/{transactionId}`. */
export function appStore(client: ProviderClient): Provider {
  return {
    async lookup(sub) {
      const tx = sub.originalTransactionId;
      if (!tx) throw new LookupFailed('an appstore subscription without originalTransactionId');
      const body = (await client.getJson(`/inApps/v1/subscriptions/${encodeURIComponent(tx)}`)) as AppStoreStatuses;
      const all = (body?.data ?? []).flatMap((group) => group.lastTransactions ?? []);
      // One answer covers every subscription group of the customer; ours is the one with our id.
      const last = all.find((t) => t.originalTransactionId === tx) ?? (all.length === 1 ? all[0] : undefined);
      if (!last) throw new LookupFailed(`the App Store answer has no transaction ${tx}`);
      const status = APPSTORE_STATUS[last.status ?? -1];
      if (!status) throw new LookupFailed(`the App Store answered status ${String(last.status)}, which this task does not know`);
      const info = decodeTransactionInfo(last.signedTransactionInfo);
      return { status, expiresAt: typeof info.expiresDate === 'number' ? new Date(info.expiresDate).toISOString() : undefined };
    },
  };
}

/**
 * `signedTransactionInfo` is a JWS whose payload is the transaction. Its signature is not
 * verified here: the answer came over TLS from Apple in reply to our authenticated request.
 * (An app that also trusts JWS from elsewhere, e.g. notifications, verifies them against
 * Apple's root certificate.) A plain JSON string is accepted too: the tests' fake sends one.
 */
function decodeTransactionInfo(signed: string | undefined): { expiresDate?: number } {
  if (!signed) return {};
  try {
    const parts = signed.split('.');
    const json = parts.length === 3 ? Buffer.from(parts[1]!, 'base64url').toString('utf8') : signed;
    return JSON.parse(json) as { expiresDate?: number };
  } catch {
    throw new LookupFailed('the App Store signedTransactionInfo is neither a JWS nor JSON');
  }
}

interface PlaySubscription {
  subscriptionState?: string;
  lineItems?: Array<{ expiryTime?: string }>;
}

/** `GET /androidpublisher/v3/applications/{pkg}/purchases/subscriptionsv2/tokens/{token}`. */
export function play(client: ProviderClient, packageName: string): Provider {
  return {
    async lookup(sub) {
      const token = sub.purchaseToken;
      if (!token) throw new LookupFailed('a play subscription without purchaseToken');
      const path = `/androidpublisher/v3/applications/${encodeURIComponent(packageName)}/purchases/subscriptionsv2/tokens/${encodeURIComponent(token)}`;
      const body = (await client.getJson(path)) as PlaySubscription;
      const status = PLAY_STATE[body?.subscriptionState ?? ''];
      if (!status)
        throw new LookupFailed(`Google Play answered subscriptionState ${String(body?.subscriptionState)}, which this task does not know`);
      // Several line items (a bundle of products): access lasts as long as the latest one.
      const expiries = (body.lineItems ?? []).map((li) => Date.parse(li.expiryTime ?? '')).filter((t) => !Number.isNaN(t));
      return { status, expiresAt: expiries.length > 0 ? new Date(Math.max(...expiries)).toISOString() : undefined };
    },
  };
}
