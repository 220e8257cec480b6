/**
 * The CLI's verbs that act on a running daemon (`run`, `status`, `logs`) use its ops API,
 * so they work the same against a local daemon or a remote one (RUNLET_URL), with the
 * same token.
 */
export class ApiClient {
  constructor(
    readonly baseUrl: string,
    private readonly token?: string,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const text = await this.raw(method, path, body, headers);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async raw(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<string> {
    let res: Response;
    try {
      res = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
    } catch (err) {
      throw new CliError(
        `cannot reach runlet at ${this.baseUrl} (${(err as Error).cause ?? (err as Error).message}). Is the daemon running (npm start)? Set RUNLET_URL to reach another one.`,
      );
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text;
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? text;
      } catch {
        // not JSON: keep the text
      }
      throw new CliError(`${method} ${path}: ${res.status} ${message}`);
    }
    return text;
  }
}

/** An error whose message is meant for the terminal as is (no stack). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}
