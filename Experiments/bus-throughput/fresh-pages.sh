#!/usr/bin/env bash
# Fills a fresh 538 MB mapping with 4 KiB pages and with huge pages, alternating, one process
# and then three at once (as a broker and two workers receive a checkpoint). Needs a C compiler
# (cc or clang). Prints to stdout and to fresh-pages-output.txt beside this script.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(mktemp -d)/fresh-pages"
"${CC:-cc}" -O2 -o "$bin" "$here/fresh-pages.c"
{
    echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -srm), THP: $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
    echo "# one process, alternating"
    for _ in 1 2 3; do "$bin" 0; "$bin" 1; done
    echo "# three processes at once"
    for huge in 0 1; do "$bin" $huge & "$bin" $huge & "$bin" $huge; wait; done
} | tee "$here/fresh-pages-output.txt"
