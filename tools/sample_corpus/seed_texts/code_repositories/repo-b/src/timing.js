// SPDX-License-Identifier: Apache-2.0
// Copyright 2024 The tinyroute contributors

/**
 * Timing helpers shared by the router and the UI widgets.
 * @module timing
 */

/**
 * Delay calls to `fn` until `wait` ms have passed without another call.
 * The returned function has `cancel()` and `flush()` methods.
 */
export function debounce(fn, wait = 100, { leading = false } = {}) {
  let timer = null;
  let lastArgs = null;
  let lastThis = null;

  function invoke() {
    const args = lastArgs;
    const ctx = lastThis;
    lastArgs = lastThis = null;
    return fn.apply(ctx, args);
  }

  function debounced(...args) {
    lastArgs = args;
    lastThis = this;
    const callNow = leading && timer === null;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (!leading && lastArgs) invoke();
    }, wait);
    if (callNow) return invoke();
    return undefined;
  }

  debounced.cancel = () => {
    clearTimeout(timer);
    timer = null;
    lastArgs = lastThis = null;
  };

  debounced.flush = () => {
    if (timer === null || !lastArgs) return undefined;
    clearTimeout(timer);
    timer = null;
    return invoke();
  };

  return debounced;
}

/**
 * Call `fn` at most once every `interval` ms; the last call in a burst
 * is always delivered.
 */
export function throttle(fn, interval = 100) {
  let last = 0;
  let pending = null;

  return function throttled(...args) {
    const now = Date.now();
    const remaining = interval - (now - last);
    if (remaining <= 0) {
      clearTimeout(pending);
      pending = null;
      last = now;
      fn.apply(this, args);
    } else if (pending === null) {
      pending = setTimeout(() => {
        last = Date.now();
        pending = null;
        fn.apply(this, args);
      }, remaining);
    }
  };
}

/** Resolve after `ms` milliseconds; rejects with an AbortError if `signal` fires. */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const id = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(id);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
