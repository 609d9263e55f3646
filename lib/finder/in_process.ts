/**
 * The connector following the finder in the same process (the one-process
 * mode, docs/design.md#one-process-mode) through what it would read over
 * D-Bus: get_all_log_pages(true)'s JSON, validated by the same reader as
 * stafd's reply (lib/dbus/stafd_pages.ts), and "unknown is not empty":
 * while a DC's page was never read, the answer is unknown and stacd keeps
 * every discovered controller.
 */
import type { DiscoveredPage } from "../core/desired_set.ts";
import type { StafdReason } from "../dbus/stafd_follower.ts";
import { parseLogPages } from "../dbus/stafd_pages.ts";
import type { Logger } from "../logger.ts";
import type { StafdApp } from "./stafd_app.ts";

export interface FollowFinderOptions {
  log: Logger;
  onPages: (pages: DiscoveredPage[] | undefined, reason: StafdReason) => void;
}

/** Hands the finder's pages to `onPages` now and after every change (one call per turn). */
export function followFinder(finder: StafdApp, options: FollowFinderOptions): void {
  const { log } = options;
  let scheduled = false;
  const deliver = (reason: StafdReason) => {
    const unknown = finder.snapshot().dcs.some((dc) => !dc.known);
    const { pages, problems, complete } = parseLogPages(finder.model.allLogPages(true));
    for (const problem of problems) log.warning(`Finder's log pages: ${problem}`);
    try {
      options.onPages(complete && !unknown ? pages : undefined, reason);
    } catch (error) {
      log.error(`Handling the finder's log pages failed: ${(error as Error).message}`);
    }
  };
  finder.onChange(() => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      deliver("changed");
    }, 0);
  });
  deliver("appeared");
}
