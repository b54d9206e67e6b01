// SPDX-License-Identifier: Apache-2.0
// Copyright 2024 The Ledgerline Authors

package org.example.cache;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * A thread-safe least-recently-used cache with hit and miss counters.
 *
 * @param <K> key type
 * @param <V> value type
 */
public final class LruCache<K, V> {
    private final int capacity;
    private final LinkedHashMap<K, V> entries;
    private long hits;
    private long misses;

    public LruCache(int capacity) {
        if (capacity <= 0) {
            throw new IllegalArgumentException("capacity must be positive: " + capacity);
        }
        this.capacity = capacity;
        this.entries = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<K, V> eldest) {
                return size() > LruCache.this.capacity;
            }
        };
    }

    public synchronized Optional<V> get(K key) {
        V value = entries.get(Objects.requireNonNull(key, "key"));
        if (value == null) {
            misses++;
            return Optional.empty();
        }
        hits++;
        return Optional.of(value);
    }

    public synchronized void put(K key, V value) {
        entries.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
    }

    /** Returns the cached value, computing and storing it on a miss. */
    public synchronized V computeIfAbsent(K key, Function<? super K, ? extends V> loader) {
        Optional<V> cached = get(key);
        if (cached.isPresent()) {
            return cached.get();
        }
        V value = Objects.requireNonNull(loader.apply(key), "loader returned null");
        entries.put(key, value);
        return value;
    }

    public synchronized boolean remove(K key) {
        return entries.remove(key) != null;
    }

    public synchronized int size() {
        return entries.size();
    }

    public int capacity() {
        return capacity;
    }

    /** Fraction of lookups that were hits, or 0.0 before the first lookup. */
    public synchronized double hitRate() {
        long total = hits + misses;
        return total == 0 ? 0.0 : (double) hits / total;
    }

    public synchronized void clear() {
        entries.clear();
        hits = 0;
        misses = 0;
    }

    @Override
    public synchronized String toString() {
        return String.format("LruCache[size=%d, capacity=%d, hitRate=%.2f]", entries.size(), capacity, hitRate());
    }
}
