/**
 * A bounded number of slots per key (open streams per agent, per caller uid): take() hands out a
 * release function, or undefined when the key holds all of its slots. A release
 * function frees its slot once; calling it again does nothing.
 */
export class KeyedSlots<K> {
  readonly #max: number;
  readonly #open = new Map<K, number>();

  /** `max` slots for each key. */
  constructor(max: number) {
    this.#max = max;
  }

  /** A slot for `key` and the function that frees it, or undefined when all are in use. */
  take(key: K): (() => void) | undefined {
    const n = this.#open.get(key) ?? 0;
    if (n >= this.#max) return undefined;
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    };
  }

  /** The bound per key. */
  get max(): number {
    return this.#max;
  }
}
