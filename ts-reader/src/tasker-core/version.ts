/** This package's version (`package.json`; `tests/tasker-core-module.test.ts` checks they agree). */
export const PACKAGE_VERSION = '0.1.0';
