#!/usr/bin/env bash
# Packaging: the .deb that 'cpack -G DEB' makes from the build, its contents and control data,
# its systemd unit (systemd-analyze verify), and the bash completion it ships.
#   tests/e2e/packaging_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
work=$(mktemp -d /tmp/elafros-pkg-XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0
pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; fi; }

(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log"; exit 1; }
deb=$(ls "$work"/out/elafros_*.deb)
check "cpack -G DEB makes a .deb" test -s "$deb"
dpkg-deb -c "$deb" | awk '{print $6}' >"$work/contents"
echo "     contents:"; sed 's/^/       /' "$work/contents"
for f in ./usr/bin/elafrosd ./usr/bin/elafros ./usr/lib/systemd/system/elafrosd.service \
  ./etc/elafros/config.yaml ./var/lib/elafros/ ./usr/share/bash-completion/completions/elafros; do
  check "the package installs $f" grep -qx "$f" "$work/contents"
done
check "the default config is a conffile" test "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/elafros/config.yaml
depends=$(dpkg-deb -f "$deb" Depends)
check "it depends on runc" grep -qE '(^|, )runc( |,|$)' <<<"$depends"
check "postinst creates the elafros group" grep -q "addgroup --system elafros" <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst)
check "the binaries are stripped (elafrosd under 20 MB)" test "$(dpkg-deb --fsys-tarfile "$deb" | tar -tvf - ./usr/bin/elafrosd | awk '{print $3}')" -lt 20000000

# systemd-analyze verify needs the unit's world: this machine's units plus the package's files.
root="$work/root"
mkdir -p "$root"
dpkg-deb -x "$deb" "$root"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/" 2>/dev/null || true
unit=/usr/lib/systemd/system/elafrosd.service
check "the unit passes systemd-analyze verify" systemd-analyze verify --root="$root" --man=no "$unit"
for key in "Type=notify" "KillMode=process" "Delegate=yes" "Restart=always" "LimitNOFILE="; do
  check "the unit has $key" grep -q "^$key" "$root$unit"
done
sed -i 's|^ExecStart=/usr/bin/elafrosd|ExecStart=/usr/bin/elafrosd-missing|' "$root$unit"
if systemd-analyze verify --root="$root" --man=no "$unit" >/dev/null 2>&1; then
  fail "a broken unit fails verification (the check can fail)"; else pass "a broken unit fails verification (the check can fail)"; fi

# The completion script the package ships completes commands and flags.
comp="$root/usr/share/bash-completion/completions/elafros"
check "the completion script is valid bash" bash -n "$comp"
complete_words() { bash -c "source '$comp'; COMP_WORDS=($1); COMP_CWORD=\$((\${#COMP_WORDS[@]} - 1)); _elafros; echo \"\${COMPREPLY[*]}\""; }
check "it completes commands" test "$(complete_words 'elafros ser')" = "service"
check "it completes subcommands" test "$(complete_words 'elafros image p')" = "pull push prune"
check "it completes a command's flags" grep -qw -- "--follow" <<<"$(complete_words 'elafros logs x --f')"

if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
echo "all checks passed"
