import { describe, expect, it } from 'vitest';
import { redisUrlOf } from '../src/cli/start.js';
import { describeTarget, parseSentinelUrl, redisOptions } from '../src/lib/redis.js';

// How REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_NAME name runlet's Redis: no server needed.
describe('sentinel URLs', () => {
  it('name every sentinel (26379 unless given), the master, its credentials, the database and the sentinels’ own password', () => {
    expect(parseSentinelUrl('redis+sentinel://app:s3cr%40t@10.0.0.1,10.0.0.2:26380,[::1]:26381/mymaster/2?sentinelPassword=sp')).toEqual({
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: '::1', port: 26381 },
      ],
      name: 'mymaster',
      username: 'app',
      password: 's3cr@t',
      sentinelPassword: 'sp',
      db: 2,
      tls: false,
    });
    expect(parseSentinelUrl('rediss+sentinel://h1/m').tls).toBe(true);
  });

  it('become ioredis sentinel options, for every connection (BullMQ’s too), following a failover', () => {
    const o = redisOptions({ url: 'redis+sentinel://:pw@h1:1,h2:2/mymaster' });
    expect(o).toMatchObject({
      sentinels: [
        { host: 'h1', port: 1 },
        { host: 'h2', port: 2 },
      ],
      name: 'mymaster',
      password: 'pw',
      failoverDetector: true,
    });
    expect(o.maxRetriesPerRequest).toBeNull();
    expect(o.host).toBeUndefined();
  });

  it('are logged without passwords', () => {
    expect(describeTarget({ url: 'redis+sentinel://app:pw@h1:1,h2:2/mymaster/3?sentinelPassword=sp' })).toBe(
      'redis+sentinel://app:***@h1:1,h2:2/mymaster/3',
    );
  });

  it('are refused with the reason when malformed', () => {
    expect(() => parseSentinelUrl('redis+sentinel://h1:1,h2:2')).toThrow(/no master name/);
    expect(() => parseSentinelUrl('redis+sentinel:///mymaster')).toThrow(/no sentinel host/);
    expect(() => parseSentinelUrl('redis+sentinel://h1:99999/m')).toThrow(/no valid port/);
    expect(() => parseSentinelUrl('redis+sentinel://h1/m/x')).toThrow(/only a database number/);
    expect(() => parseSentinelUrl('redis+sentinel://h1/m?password=x')).toThrow(/unknown parameter password/);
  });
});

describe('runlet start: which Redis', () => {
  it('REDIS_SENTINELS with REDIS_SENTINEL_NAME stand for the sentinel URL', () => {
    expect(redisUrlOf({ REDIS_SENTINELS: 'a:26379,b:26379', REDIS_SENTINEL_NAME: 'mymaster' })).toBe(
      'redis+sentinel://a:26379,b:26379/mymaster',
    );
    expect(redisUrlOf({ REDIS_URL: 'redis+sentinel://a,b/m' })).toBe('redis+sentinel://a,b/m');
    expect(redisUrlOf({ REDIS_URL: 'redis://r:6379' })).toBe('redis://r:6379');
    expect(redisUrlOf({})).toBeUndefined();
  });

  it('refuses half a sentinel setting, both settings at once, and a malformed one, naming the variables', () => {
    expect(() => redisUrlOf({ REDIS_SENTINELS: 'a:1' })).toThrow(/REDIS_SENTINELS is set without REDIS_SENTINEL_NAME/);
    expect(() => redisUrlOf({ REDIS_SENTINEL_NAME: 'm' })).toThrow(/REDIS_SENTINEL_NAME is set without REDIS_SENTINELS/);
    expect(() => redisUrlOf({ REDIS_URL: 'redis://r', REDIS_SENTINELS: 'a:1', REDIS_SENTINEL_NAME: 'm' })).toThrow(/either REDIS_URL or/);
    expect(() => redisUrlOf({ REDIS_SENTINELS: 'a:x', REDIS_SENTINEL_NAME: 'm' })).toThrow(
      /^REDIS_SENTINELS\/REDIS_SENTINEL_NAME: "a:x" is not a sentinel address/,
    );
  });
});
