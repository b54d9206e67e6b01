"""Documents, readers, language ID, quality rules, safety and PII, dedup and mixing."""
