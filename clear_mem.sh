#!/usr/bin/env bash
# clear_mem.sh [INTERVAL_SECONDS]
#
# Kept from pyACTRECOG 1.0.4, where preprocessing needed it to stay alive. The
# preprocessing no longer does (it streams sequence by sequence; see the README
# for its measured peak memory), but other heavy jobs may still fill the page
# cache: this prints `free -m`, then asks the kernel to drop clean page-cache
# pages, every INTERVAL seconds (default 30), until Ctrl-C or SIGTERM.
set -u

prog=clear_mem.sh
case "${1:-}" in
  -h|--help)
    echo "usage: sudo ./$prog [INTERVAL_SECONDS]   (default 30; stop with Ctrl-C)"
    exit 0 ;;
esac

interval="${1:-30}"
if ! [[ "$interval" =~ ^[0-9]+$ ]] || [ "$interval" -lt 1 ]; then
  echo "$prog: error: INTERVAL_SECONDS must be a positive whole number, got '$interval'" >&2
  exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "$prog: error: dropping the page cache needs root; run: sudo ./$prog $interval" >&2
  exit 2
fi

# The tests point this at a scratch file instead of the kernel's knob.
drop_caches="${DROP_CACHES_PATH:-/proc/sys/vm/drop_caches}"

stop() {
  echo "$prog: stopped"
  exit 0
}
trap stop INT TERM

while true; do
  free -m
  sync                      # only clean pages can be dropped
  if ! echo 1 > "$drop_caches"; then
    echo "$prog: error: cannot write $drop_caches" >&2
    exit 1
  fi
  # Sleep in the background so a signal ends the wait at once.
  sleep "$interval" &
  wait $!
done
