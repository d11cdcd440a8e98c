#!/usr/bin/env bash
# Namespaces end to end: `default` exists; a resource in a missing namespace is refused, naming
# it; deleting a namespace deletes what it holds (the service's instances stop, a running build
# is killed, a broker goes) and then the namespace; `default` may not be deleted.
#   tests/e2e/namespaces_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/image" latest >/dev/null
start_daemon
e image import "oci:$work/image:latest" --name busybox:latest >/dev/null

check "the default namespace exists and is Active" grep -qE "^default +Active" <<<"$(e namespace list)"
if out=$(e service create hello -n team --image busybox:latest 2>&1); then fail "a service in a missing namespace is refused"; else
  check "a service in a missing namespace is refused, naming it" contains "$out" 'namespaces "team" not found: create it first'
fi
check "namespace create" contains "$(e namespace create team)" "Namespace 'team' created."
if out=$(e namespace create Team 2>&1); then fail "a bad namespace name is refused"; else
  check "a bad namespace name is refused" contains "$out" 'metadata.name: "Team" is not a namespace name'; fi
e service create hello -n team --image busybox:latest >/dev/null
e broker create events -n team >/dev/null
e build create slow -n team --step-image busybox:latest --script 'sleep 60' >/dev/null
steps() { runc --root "$data/builds/runc" list -q 2>/dev/null | grep -c '^slow-' || true; }
check "the service runs an instance" wait_until 20 bash -c "[ \$(runc --root '$data/runc' list | grep '^hello-' | grep -vc ' created ') -ge 1 ]"
check "the build runs its step" wait_until 20 bash -c "[ \$(runc --root '$data/builds/runc' list -q 2>/dev/null | grep -c '^slow-') -ge 1 ]" 2>/dev/null
out=$(e namespace delete team)
check "namespace delete waits until the namespace is gone" contains "$out" "Namespace 'team' deleted, with everything in it."
check "...its service's instances and standbys are gone" [ -z "$(runc --root "$data/runc" list -q | grep '^hello-')" ]
check "...its build's step was killed" [ "$(steps)" = 0 ]
check "...its service, broker and build are gone" bash -c "! $elafros_bin --socket $sock service describe hello -n team >/dev/null 2>&1 && ! $elafros_bin --socket $sock broker describe events -n team >/dev/null 2>&1 && ! $elafros_bin --socket $sock build describe slow -n team >/dev/null 2>&1"
check "...and the namespace is not listed" bash -c "! grep -q '^team ' <<<\"\$($elafros_bin --socket $sock namespace list)\""
if out=$(e namespace delete default 2>&1); then fail "default may not be deleted"; else
  check "default may not be deleted" contains "$out" 'namespaces "default" is forbidden: this namespace may not be deleted'; fi
finish
