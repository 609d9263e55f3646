/** stacd's own version; the D-Bus API and files follow nvme-stas 2.4. */
export const VERSION = "0.1.0";
export const COMPATIBLE_WITH = "nvme-stas 2.4";
