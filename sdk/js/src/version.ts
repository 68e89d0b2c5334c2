/** The SDK's version, sent in `User-Agent: clipmix-js/<version>` (a test keeps it in step
 * with package.json). */
export const VERSION = "0.1.0";
