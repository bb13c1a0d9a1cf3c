// Reading credentials as the latchkey CLI does: the environment, then a
// profile of the shared credentials file (~/.latchkey/credentials, INI).

import { LatchkeyError } from "./errors.js";

/** The keys of a profile in the credentials file. */
const KEY_ID = "latchkey_access_key_id";
const KEY_SECRET = "latchkey_secret_access_key";
const KEY_ENDPOINT = "endpoint_url";

/**
 * parseProfile returns the key/value pairs of profile name in the text of a
 * credentials file, or undefined when it has no such profile. "[profile
 * name]" names it too; "#" and ";" start comments.
 */
export function parseProfile(text: string, name: string): Record<string, string> | undefined {
  let p: Record<string, string> | undefined;
  let inside = false;
  for (const line of text.split(/\r?\n/)) {
    const t = line.trim();
    if (t.length >= 2 && t.startsWith("[") && t.endsWith("]")) {
      const section = t.slice(1, -1).trim().replace(/^profile /, "").trim();
      inside = section === name;
      if (inside) p ??= {};
      continue;
    }
    if (!inside || t === "" || t.startsWith("#") || t.startsWith(";")) continue;
    const eq = t.indexOf("=");
    if (eq < 0) continue;
    p![t.slice(0, eq).trim()] = t.slice(eq + 1).trim();
  }
  return p;
}

/** What a client needs, resolved from the environment and a profile. */
export interface Resolved {
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey: string;
}

/**
 * resolveProfile resolves credentials and endpoint as the CLI does:
 * LATCHKEY_ACCESS_KEY_ID and LATCHKEY_SECRET_ACCESS_KEY when both are set,
 * else the profile (its name from profile, LATCHKEY_PROFILE or "default")
 * of the file LATCHKEY_SHARED_CREDENTIALS_FILE names (~/.latchkey/credentials
 * by default); the endpoint from LATCHKEY_ENDPOINT_URL, else the profile's
 * endpoint_url. Throws InvalidArgument when neither gives a key.
 */
export async function resolveProfile(profile: string | undefined, env: Record<string, string | undefined>): Promise<Resolved> {
  const name = profile || env.LATCHKEY_PROFILE || "default";
  const id = env.LATCHKEY_ACCESS_KEY_ID;
  const secret = env.LATCHKEY_SECRET_ACCESS_KEY;
  if (id && secret) return { endpoint: env.LATCHKEY_ENDPOINT_URL || undefined, accessKeyId: id, secretAccessKey: secret };
  if (id || secret) {
    const [set, unset] = secret ? ["LATCHKEY_SECRET_ACCESS_KEY", "LATCHKEY_ACCESS_KEY_ID"] : ["LATCHKEY_ACCESS_KEY_ID", "LATCHKEY_SECRET_ACCESS_KEY"];
    throw new LatchkeyError("InvalidArgument", `${set} is set but ${unset} is not; set both, or unset ${set} to use the credentials file`);
  }
  const { readFile } = await import("node:fs/promises");
  const { homedir } = await import("node:os");
  const { join } = await import("node:path");
  const file = env.LATCHKEY_SHARED_CREDENTIALS_FILE || join(homedir(), ".latchkey", "credentials");
  let text = "";
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOENT") {
      throw new LatchkeyError("InvalidArgument", `reading the credentials file ${file}: ${(err as Error).message}`);
    }
  }
  const p = parseProfile(text, name);
  if (!p?.[KEY_SECRET]) {
    throw new LatchkeyError(
      "InvalidArgument",
      `no credentials: profile "${name}" in ${file} has no ${KEY_SECRET}; set LATCHKEY_ACCESS_KEY_ID and LATCHKEY_SECRET_ACCESS_KEY, or save a key to that profile`,
    );
  }
  return {
    endpoint: env.LATCHKEY_ENDPOINT_URL || p[KEY_ENDPOINT] || undefined,
    accessKeyId: p[KEY_ID] || undefined,
    secretAccessKey: p[KEY_SECRET],
  };
}
