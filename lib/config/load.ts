/**
 * A daemon's configuration files read together, as it needs them at start
 * and at every reload: stacd.conf (or stafd.conf) and sys.conf, with every
 * diagnostic, and the warning for key-holding files that others can read.
 */
import type { ConfigDiagnostic } from "./diagnostics.ts";
import { formatDiagnostic } from "./diagnostics.ts";
import type { ConfResult, ListConfig } from "./conf_file.ts";
import type { GlobalConfig } from "./global_options.ts";
import { holdsSecrets, loadStacdConfig, type StacdConfig } from "./stacd_conf.ts";
import { loadStafdConfig, type StafdConfig } from "./stafd_conf.ts";
import { DEFAULT_SYS_CONF, keyFileModeWarning, loadSysConfig, type SysConfig } from "./sys_conf.ts";
import { denoTextFileReader, type TextFileReader } from "./text_file.ts";
import type { Logger } from "../logger.ts";

export interface Configuration<C = StacdConfig> {
  config: C;
  sys: SysConfig;
  diagnostics: ConfigDiagnostic[];
}

export interface ConfigurationFiles {
  confFile: string;
  sysConfFile?: string;
}

/**
 * Loads stacd.conf and sys.conf. Throws HostNqnError (from sys.conf) when
 * there is no usable host NQN, FileReadError when either file exists but
 * cannot be read (absent files mean defaults); everything else is a
 * diagnostic.
 */
export function loadConfiguration(
  files: ConfigurationFiles,
  reader: TextFileReader = denoTextFileReader,
  modeOf: (path: string) => number | null = statMode,
): Configuration {
  return loadWith(loadStacdConfig, files, reader, modeOf);
}

/** loadConfiguration() for stafd: stafd.conf and sys.conf. */
export function loadStafdConfiguration(
  files: ConfigurationFiles,
  reader: TextFileReader = denoTextFileReader,
  modeOf: (path: string) => number | null = statMode,
): Configuration<StafdConfig> {
  return loadWith(loadStafdConfig, files, reader, modeOf);
}

function loadWith<C extends GlobalConfig & ListConfig>(
  load: (reader: TextFileReader, file: string) => ConfResult<C>,
  files: ConfigurationFiles,
  reader: TextFileReader,
  modeOf: (path: string) => number | null,
): Configuration<C> {
  const sysConfFile = files.sysConfFile ?? DEFAULT_SYS_CONF;
  const daemon = load(reader, files.confFile);
  const sys = loadSysConfig(reader, sysConfFile);
  const diagnostics = [...daemon.diagnostics, ...sys.diagnostics];
  const keyFiles = new Set(sys.config.keyFiles);
  if (holdsSecrets(daemon.config)) keyFiles.add(files.confFile);
  for (const file of keyFiles) {
    const warning = keyFileModeWarning(file, modeOf(file));
    if (warning) diagnostics.push(warning);
  }
  return { config: daemon.config, sys: sys.config, diagnostics };
}

/** Logs diagnostics at their level. */
export function logDiagnostics(log: Logger, diagnostics: readonly ConfigDiagnostic[]): void {
  for (const d of diagnostics) {
    const text = formatDiagnostic(d);
    if (d.level === "error") log.error(text);
    else if (d.level === "warning") log.warning(text);
    else log.info(text);
  }
}

function statMode(path: string): number | null {
  try {
    return Deno.statSync(path).mode;
  } catch {
    return null;
  }
}
