// The few node:crypto functions clipmix/node uses, declared here so that the SDK builds with
// TypeScript alone (no @types/node). Node's Buffer is a Uint8Array.
declare module "node:crypto" {
  interface Hmac {
    update(data: Uint8Array | string): Hmac;
    digest(): Uint8Array;
  }
  export function createHmac(algorithm: string, key: Uint8Array | string): Hmac;
  export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean;
  export function randomBytes(size: number): Uint8Array;
}
