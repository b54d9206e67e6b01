// SPDX-License-Identifier: GPL-3.0-only
// Copyright (C) 2024 Tomasz Wrona
//
// This program is free software: you can redistribute it and/or modify it
// under the terms of the GNU General Public License as published by the Free
// Software Foundation, version 3.

package org.example.csv;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.Reader;
import java.util.ArrayList;
import java.util.List;

/**
 * Minimal RFC 4180 CSV reader: quoted fields, escaped quotes ("") and
 * line breaks inside quotes are supported.
 */
public final class CsvReader implements AutoCloseable {
    private final BufferedReader in;
    private final char delimiter;
    private long recordNumber;

    public CsvReader(Reader reader) {
        this(reader, ',');
    }

    public CsvReader(Reader reader, char delimiter) {
        this.in = reader instanceof BufferedReader br ? br : new BufferedReader(reader);
        this.delimiter = delimiter;
    }

    /** Reads the next record, or returns null at end of input. */
    public List<String> next() throws IOException {
        int c = in.read();
        if (c == -1) {
            return null;
        }
        List<String> fields = new ArrayList<>();
        StringBuilder field = new StringBuilder();
        boolean quoted = false;
        boolean fieldStarted = false;

        while (c != -1) {
            char ch = (char) c;
            if (quoted) {
                if (ch == '"') {
                    in.mark(1);
                    int peek = in.read();
                    if (peek == '"') {
                        field.append('"');
                    } else {
                        quoted = false;
                        if (peek != -1) {
                            in.reset();
                        }
                    }
                } else {
                    field.append(ch);
                }
            } else if (ch == '"' && !fieldStarted) {
                quoted = true;
                fieldStarted = true;
            } else if (ch == delimiter) {
                fields.add(field.toString());
                field.setLength(0);
                fieldStarted = false;
            } else if (ch == '\n' || ch == '\r') {
                if (ch == '\r') {
                    in.mark(1);
                    if (in.read() != '\n') {
                        in.reset();
                    }
                }
                break;
            } else {
                field.append(ch);
                fieldStarted = true;
            }
            c = in.read();
        }
        if (quoted) {
            throw new IOException("unterminated quoted field in record " + (recordNumber + 1));
        }
        fields.add(field.toString());
        recordNumber++;
        return fields;
    }

    /** Reads every remaining record. */
    public List<List<String>> readAll() throws IOException {
        List<List<String>> rows = new ArrayList<>();
        for (List<String> row = next(); row != null; row = next()) {
            rows.add(row);
        }
        return rows;
    }

    public long recordNumber() {
        return recordNumber;
    }

    @Override
    public void close() throws IOException {
        in.close();
    }
}
