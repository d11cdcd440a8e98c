#!/usr/bin/env bash
# Fuzzes the layer unpacker with libFuzzer (clang from Debian), from a seed corpus of small
# layers made here: plain, gzip, whiteouts, links, and the hostile cases the unit tests cover.
#   tests/fuzz/run.sh [SECONDS]        (default 60; as root, like the unpacker in elafrosd)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-60}
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p"
done
out=build-fuzz
mkdir -p "$out/corpus"
clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -Iinclude -Iruntime \
  tests/fuzz/layer_unpacker_fuzzer.cpp runtime/layer_unpacker.cpp -lfmt -larchive -o "$out/layer_unpacker_fuzzer"

# Seeds, made with tar: the fuzzer mutates from these.
seed=$(mktemp -d)
trap 'rm -rf "$seed"' EXIT
( cd "$seed" && mkdir -p a/b d && echo x >a/b/f && ln -s b a/link && ln a/b/f a/hard && touch d/.wh.gone d/.wh..wh..opq &&
  tar cf "$OLDPWD/$out/corpus/plain.tar" a d && tar czf "$OLDPWD/$out/corpus/gzip.tar.gz" a &&
  ln -s ../../../etc esc && tar cf "$OLDPWD/$out/corpus/symlink-escape.tar" esc &&
  tar cf "$OLDPWD/$out/corpus/dotdot.tar" --transform 's,^a,../a,' a/b/f )
"$out/layer_unpacker_fuzzer" -max_total_time="$seconds" -max_len=65536 "$out/corpus"
