// The UI's only door to Flywheel: the public HTTP API with the user's token (kept in sessionStorage).
const TOKEN_KEY = 'flywheel.token';

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiFailure';
  }
}

export const getToken = (): string | null => sessionStorage.getItem(TOKEN_KEY);
export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  window.dispatchEvent(new Event('flywheel:token'));
}

async function failureOf(response: Response): Promise<ApiFailure> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as {
      error?: { code?: string; message?: string };
      error_code?: string;
      message?: string;
    };
    const code = body.error?.code ?? body.error_code ?? `HTTP_${response.status}`;
    return new ApiFailure(response.status, code, body.error?.message ?? body.message ?? text);
  } catch {
    return new ApiFailure(response.status, `HTTP_${response.status}`, text || response.statusText);
  }
}

export async function request(path: string, init: RequestInit = {}, token = getToken()): Promise<Response> {
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  if (init.body && !headers.has('content-type')) headers.set('content-type', 'application/json');
  const response = await fetch(path, { ...init, headers });
  if (!response.ok) {
    const failure = await failureOf(response);
    // A revoked or unknown token: back to the login screen (a 403 is a scope refusal, shown where it happened).
    if (response.status === 401 && token === getToken()) setToken(null);
    throw failure;
  }
  return response;
}

export async function api<T>(path: string, init?: RequestInit): Promise<T> {
  return (await request(path, init)).json() as Promise<T>;
}

export const post = <T>(path: string, body: unknown = {}) =>
  api<T>(path, { method: 'POST', body: JSON.stringify(body) });

/** Fetches with the token and hands the browser a download (an <a download> cannot send an Authorization header). */
export async function download(path: string, fileName: string): Promise<void> {
  const blob = await (await request(path)).blob();
  const url = URL.createObjectURL(blob);
  const link = Object.assign(document.createElement('a'), { href: url, download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export const q = (params: Record<string, string | number | undefined | null>) => {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params))
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  const text = search.toString();
  return text ? `?${text}` : '';
};
export const enc = encodeURIComponent;
