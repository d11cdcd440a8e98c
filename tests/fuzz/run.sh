#!/usr/bin/env bash
# Fuzzes with libFuzzer (clang from Debian), from seed corpora made here:
#   tests/fuzz/run.sh [TARGET] [SECONDS]   (TARGET: layer (default) or http; SECONDS: 60)
# layer: the layer unpacker, from small layers (plain, gzip, whiteouts, links, and the hostile
#   cases the unit tests cover); as root, like the unpacker in elafrosd.
# http: the proxy's request path (src/proxy/http_framing), from the requests of
#   tests/http/corpus.py, hostile and valid. CI runs it briefly (ctest fuzz_http).
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:-layer}
seconds=${2:-60}
for p in clang libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p"
done
out=${FUZZ_OUT:-build-fuzz}
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)
seed=$(mktemp -d)
trap 'rm -rf "$seed"' EXIT
case $target in
layer)
  mkdir -p "$out/corpus"
  clang++ "${flags[@]}" -Iinclude -Iruntime \
    tests/fuzz/layer_unpacker_fuzzer.cpp runtime/layer_unpacker.cpp -lfmt -larchive -o "$out/layer_unpacker_fuzzer"
  # Seeds, made with tar: the fuzzer mutates from these.
  ( cd "$seed" && mkdir -p a/b d && echo x >a/b/f && ln -s b a/link && ln a/b/f a/hard && touch d/.wh.gone d/.wh..wh..opq &&
    tar cf "$OLDPWD/$out/corpus/plain.tar" a d && tar czf "$OLDPWD/$out/corpus/gzip.tar.gz" a &&
    ln -s ../../../etc esc && tar cf "$OLDPWD/$out/corpus/symlink-escape.tar" esc &&
    tar cf "$OLDPWD/$out/corpus/dotdot.tar" --transform 's,^a,../a,' a/b/f )
  "$out/layer_unpacker_fuzzer" -artifact_prefix="$out/" -max_total_time="$seconds" -max_len=65536 "$out/corpus"
  ;;
http)
  mkdir -p "$out/http-corpus"
  clang++ "${flags[@]}" -Isrc tests/fuzz/http_request_fuzzer.cpp src/proxy/http_framing.cpp \
    -lfmt -o "$out/http_request_fuzzer"
  /usr/bin/python3 tests/http/corpus.py --write-seeds "$out/http-corpus"
  "$out/http_request_fuzzer" -max_total_time="$seconds" -max_len=4096 -timeout=10 -artifact_prefix="$out/" \
    -print_final_stats=1 "$out/http-corpus"
  ;;
*) echo "fuzz: unknown target $target (layer or http)" >&2; exit 2 ;;
esac
