// SPDX-License-Identifier: BSD-3-Clause
// Copyright (c) 2024, The sensorlog developers

//! A fixed-capacity ring buffer that overwrites the oldest sample when full.

/// Ring buffer holding at most `capacity` items.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    buf: Vec<Option<T>>,
    head: usize,
    len: usize,
}

impl<T> Ring<T> {
    /// Creates an empty ring. Panics if `capacity` is zero.
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(capacity > 0, "capacity must be positive");
        let mut buf = Vec::with_capacity(capacity);
        buf.resize_with(capacity, || None);
        Ring { buf, head: 0, len: 0 }
    }

    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == self.capacity()
    }

    /// Appends `value`, returning the evicted oldest item if the ring was full.
    pub fn push(&mut self, value: T) -> Option<T> {
        let cap = self.capacity();
        let tail = (self.head + self.len) % cap;
        let evicted = self.buf[tail].replace(value);
        if self.len == cap {
            self.head = (self.head + 1) % cap;
        } else {
            self.len += 1;
        }
        evicted
    }

    /// Removes and returns the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.buf[self.head].take();
        self.head = (self.head + 1) % self.capacity();
        self.len -= 1;
        value
    }

    /// Iterates from the oldest to the newest item.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        let cap = self.capacity();
        (0..self.len).filter_map(move |i| self.buf[(self.head + i) % cap].as_ref())
    }

    pub fn clear(&mut self) {
        self.buf.iter_mut().for_each(|slot| *slot = None);
        self.head = 0;
        self.len = 0;
    }
}

impl Ring<f64> {
    /// Arithmetic mean of the stored samples, or `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        if self.is_empty() {
            return None;
        }
        Some(self.iter().sum::<f64>() / self.len as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overwrites_oldest_when_full() {
        let mut ring = Ring::with_capacity(3);
        for i in 1..=3 {
            assert_eq!(ring.push(i), None);
        }
        assert_eq!(ring.push(4), Some(1));
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), vec![2, 3, 4]);
    }

    #[test]
    fn pop_returns_items_in_order() {
        let mut ring = Ring::with_capacity(2);
        ring.push("a");
        ring.push("b");
        assert_eq!(ring.pop(), Some("a"));
        assert_eq!(ring.pop(), Some("b"));
        assert_eq!(ring.pop(), None);
        assert!(ring.is_empty());
    }

    #[test]
    fn mean_of_samples() {
        let mut ring = Ring::with_capacity(4);
        assert_eq!(ring.mean(), None);
        for x in [1.0, 2.0, 3.0, 4.0, 5.0] {
            ring.push(x);
        }
        assert_eq!(ring.mean(), Some(3.5));
    }
}
