/**
 * Host names in stacd.conf, resolved through the system resolver
 * (getaddrinfo: /etc/hosts and nsswitch apply) when the reconciler's inputs
 * change, never on a timer. The first address of an enabled IP family wins, in the order the
 * ip-family option gives.
 */
import { lookup } from "node:dns/promises";

export type Resolver = (name: string) => Promise<{ address: string; family: number }[]>;

export const systemResolver: Resolver = (name) => lookup(name, { all: true, verbatim: true });

export async function resolveHostNames(
  names: readonly string[],
  families: readonly (4 | 6)[],
  resolver: Resolver = systemResolver,
  report: (message: string) => void = () => {},
): Promise<Map<string, string>> {
  const resolved = new Map<string, string>();
  await Promise.all(names.map(async (name) => {
    try {
      const addresses = await resolver(name);
      for (const family of families) {
        const hit = addresses.find((a) => a.family === family);
        if (hit) {
          resolved.set(name, hit.address);
          return;
        }
      }
      report(`Host name ${JSON.stringify(name)} has no address of an enabled IP family`);
    } catch (error) {
      report(`Cannot resolve host name ${JSON.stringify(name)}: ${(error as Error).message}`);
    }
  }));
  return resolved;
}
