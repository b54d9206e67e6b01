// SPDX-License-Identifier: Apache-2.0
// Copyright 2024 The Pathfinder Authors

// Package ratelimit implements a token-bucket rate limiter keyed by client.
package ratelimit

import (
	"sync"
	"time"
)

// Clock returns the current time; tests replace it with a fake.
type Clock func() time.Time

type bucket struct {
	tokens   float64
	updated  time.Time
	lastSeen time.Time
}

// Limiter allows up to Burst requests at once and refills at Rate tokens per second.
type Limiter struct {
	Rate  float64
	Burst int

	mu      sync.Mutex
	buckets map[string]*bucket
	now     Clock
}

// New returns a limiter that refills rate tokens per second up to burst.
func New(rate float64, burst int) *Limiter {
	if rate <= 0 || burst <= 0 {
		panic("ratelimit: rate and burst must be positive")
	}
	return &Limiter{
		Rate:    rate,
		Burst:   burst,
		buckets: make(map[string]*bucket),
		now:     time.Now,
	}
}

// WithClock replaces the time source and returns the limiter for chaining.
func (l *Limiter) WithClock(c Clock) *Limiter {
	l.now = c
	return l
}

// Allow reports whether one request from key may proceed now.
func (l *Limiter) Allow(key string) bool {
	ok, _ := l.Reserve(key)
	return ok
}

// Reserve takes a token for key if one is available. Otherwise it reports
// how long the caller should wait before the next token is ready.
func (l *Limiter) Reserve(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()

	now := l.now()
	b, found := l.buckets[key]
	if !found {
		b = &bucket{tokens: float64(l.Burst), updated: now}
		l.buckets[key] = b
	}
	b.lastSeen = now

	elapsed := now.Sub(b.updated).Seconds()
	if elapsed > 0 {
		b.tokens = min(float64(l.Burst), b.tokens+elapsed*l.Rate)
		b.updated = now
	}

	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	missing := 1 - b.tokens
	return false, time.Duration(missing / l.Rate * float64(time.Second))
}

// Sweep forgets clients that have not been seen for longer than idle and
// returns how many buckets were removed. Call it periodically.
func (l *Limiter) Sweep(idle time.Duration) int {
	l.mu.Lock()
	defer l.mu.Unlock()

	cutoff := l.now().Add(-idle)
	removed := 0
	for key, b := range l.buckets {
		if b.lastSeen.Before(cutoff) {
			delete(l.buckets, key)
			removed++
		}
	}
	return removed
}

// Len returns the number of tracked clients.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
