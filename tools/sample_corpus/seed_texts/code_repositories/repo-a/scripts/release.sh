#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Copyright (c) 2023 The textstats authors
#
# Bump the version, tag the release and build the distribution files.
# Usage: scripts/release.sh 1.4.0 [--dry-run]
set -euo pipefail

usage() {
    echo "usage: $0 VERSION [--dry-run]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
version="$1"
dry_run=false
[[ "${2:-}" == "--dry-run" ]] && dry_run=true

if ! [[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "error: version must look like MAJOR.MINOR.PATCH, got '$version'" >&2
    exit 1
fi

repo_root="$(git rev-parse --show-toplevel)"
cd "$repo_root"

if [[ -n "$(git status --porcelain)" ]]; then
    echo "error: working tree is not clean; commit or stash first" >&2
    exit 1
fi

if git rev-parse -q --verify "refs/tags/v$version" >/dev/null; then
    echo "error: tag v$version already exists" >&2
    exit 1
fi

run() {
    echo "+ $*"
    if [[ "$dry_run" == false ]]; then
        "$@"
    fi
}

echo "Releasing textstats $version"
run sed -i.bak -E "s/^version = \".*\"/version = \"$version\"/" pyproject.toml
run rm -f pyproject.toml.bak
run python -m pytest -q
run git commit -am "Release $version"
run git tag -a "v$version" -m "textstats $version"
run rm -rf dist
run python -m build

echo "Done. Push with: git push origin main v$version"
