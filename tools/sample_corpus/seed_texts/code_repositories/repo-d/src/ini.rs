// SPDX-License-Identifier: GPL-3.0-only
// Copyright (C) 2024 Mara Lindqvist
//
// This program is free software: you can redistribute it and/or modify it
// under the terms of the GNU General Public License as published by the Free
// Software Foundation, version 3.

//! A small INI parser for sensorlog configuration files.

use std::collections::BTreeMap;
use std::fmt;

/// Section name -> (key -> value). Keys outside any section live under "".
pub type Ini = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

fn error(line: usize, message: impl Into<String>) -> ParseError {
    ParseError { line, message: message.into() }
}

/// Strips a trailing `;` or `#` comment that is not inside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut in_quotes = false;
    for (i, ch) in line.char_indices() {
        match ch {
            '"' => in_quotes = !in_quotes,
            ';' | '#' if !in_quotes => return &line[..i],
            _ => {}
        }
    }
    line
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// Parses INI text. Later duplicate keys override earlier ones.
pub fn parse(text: &str) -> Result<Ini, ParseError> {
    let mut ini = Ini::new();
    let mut section = String::new();
    ini.entry(section.clone()).or_default();

    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| error(lineno, "unterminated section header"))?
                .trim();
            if name.is_empty() {
                return Err(error(lineno, "empty section name"));
            }
            section = name.to_string();
            ini.entry(section.clone()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| error(lineno, format!("expected key = value, got {line:?}")))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(error(lineno, "empty key"));
        }
        ini.get_mut(&section)
            .expect("section was inserted")
            .insert(key.to_lowercase(), unquote(value.trim()).to_string());
    }
    Ok(ini)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_comments() {
        let ini = parse("name = demo ; inline\n[serial]\nport = \"/dev/ttyUSB0\"\nBaud=9600\n").unwrap();
        assert_eq!(ini[""]["name"], "demo");
        assert_eq!(ini["serial"]["port"], "/dev/ttyUSB0");
        assert_eq!(ini["serial"]["baud"], "9600");
    }

    #[test]
    fn reports_line_numbers() {
        let err = parse("[ok]\nno equals sign\n").unwrap_err();
        assert_eq!(err.line, 2);
    }
}
