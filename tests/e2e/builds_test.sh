#!/usr/bin/env bash
# Builds end to end, through the CLI, offline, on real runc: each example app from source to a
# URL with the buildpacks (and a second, cached build of the same source with the same digest);
# templates with defaults and required parameters; a failing step, a timeout and a cancel, each
# leaving no container, mount or cgroup and their logs readable; logs followed live; a git
# source; a kill -9 mid-build; the built image read back by umoci and skopeo; and bad input
# refused with nothing created.
#   tests/e2e/builds_test.sh ELAFROSD ELAFROS SOURCE_DIR
set -euo pipefail

source "$(dirname "$0")/lib.sh"

"$src/examples/hello/build-image.sh" "$work/busybox" latest >/dev/null
"$src/examples/buildpacks/build-builder.sh" "$work/builder" latest >/dev/null
printf 'build-max-concurrent: 1\n' >"$work/daemon.yml"  # one at a time: the queue shows
daemon_args=(--config "$work/daemon.yml")
start_daemon
port=$(e status -o json | sed -n 's/.*"listen": "127.0.0.1:\([0-9]*\)".*/\1/p')
e image import "oci:$work/busybox:latest" --name busybox:latest >/dev/null
e image import "oci:$work/builder:latest" --name elafros-builder:latest >/dev/null
app() { curl -s -H "Host: $1.default.localhost" "http://127.0.0.1:$port$2"; }
api() { curl -s --unix-socket "$sock" "http://elafrosd$1"; }
build_field() { e build describe "$1" -o json | python3 -c 'import json,sys; o=json.load(sys.stdin); print(eval(sys.argv[1]))' "$2"; }
reason() { build_field "$1" '[c for c in o["status"].get("conditions",[]) if c["type"]=="Succeeded"][0].get("reason","")'; }
# Nothing a build leaves: no container in the builds' runc root, no mount or cgroup of a step.
no_leftovers() {
  [ -z "$(runc --root "$data/builds/runc" list -q 2>/dev/null)" ] &&
    ! grep -q "$data/builds" /proc/mounts &&
    [ -z "$(ls /sys/fs/cgroup/*/elafros-builds/ 2>/dev/null | grep -- "-.\{8\}s[0-9]")" ] &&
    [ -z "$(ls "$data/builds/work" 2>/dev/null)" ]
}
ended() { s=$(build_field "$1" '[c for c in o["status"].get("conditions",[]) if c["type"]=="Succeeded"][0]["status"]' 2>/dev/null) && [ "$s" != Unknown ]; }
logs_have() { e build logs "$1" 2>/dev/null | grep -q "$2"; }
running_step() { [ "$(build_field "$1" 'len(o["status"].get("stepStates",[]))' 2>/dev/null)" -ge "$2" ]; }

# --- each example app from source, through the buildpacks ---------------------------------------
out=$(e buildtemplate list)
check "the buildpacks ClusterBuildTemplate ships with elafros" contains "$out" "buildpacks   ClusterBuildTemplate   BUILDER_IMAGE,BUILDPACK"
out=$(e service create site --source "$src/examples/apps/static-site" 2>&1)
check "service create --source shows each step live, prefixed" contains "$out" "[detect] -----> Static site (index.html) app detected (buildpack static)"
check "...then the steps' exit codes and durations" grep -qE "^release +0 +[0-9.]+s" <<<"$out"
check "...and deploys the result" contains "$out" "Service 'site' created to latest revision 'site-00001'"
check "the static site serves" contains "$(app site /about.html)" "About: a second page."
out=$(e service create cgi --source "$src/examples/apps/shell-cgi" 2>&1)
check "the CGI app is detected" contains "$out" "Shell CGI (1 scripts in cgi-bin/) app detected"
check "the CGI app serves its script" contains "$(app cgi '/cgi-bin/hello?x=1')" "Hello from shell CGI (x=1)"
start=$(date +%s.%N)
out=$(e service create py --source "$src/examples/apps/python-app" 2>&1)
first=$(python3 -c "import time; print(f'{time.time()-$start:.2f}')")
check "the Python app is compiled, its vendored package installed" contains "$out" "vendored greeting"
check "the Python app serves" contains "$(app py /)" "Hello from Python, py"
digest1=$(build_field py-build-1 'o["status"]["imageDigest"]')
start=$(date +%s.%N)
out=$(e service update py --source "$src/examples/apps/python-app" 2>&1)
second=$(python3 -c "import time; print(f'{time.time()-$start:.2f}')")
echo "     python app, source to Ready: first ${first}s, second (cached) ${second}s"
check "the second build of unchanged source restores the cache" contains "$out" "Restoring the compiled app from the cache"
check "...says its app layer was unchanged" contains "$out" "The app layer was unchanged"
check "...and gives the same image digest (reproducible)" [ "$(build_field py-build-2 'o["status"]["imageDigest"]')" = "$digest1" ]
check "the service runs the build's result, pinned by digest" contains "$(e revision describe py-00002 -o json)" "$digest1"
out=$(e service create py2 --source "$src/examples/apps/python-app" --buildpack static --no-wait 2>&1 || true)
check "service create --buildpack uses that buildpack, and a failed build changes no service" contains "$out" "the build failed; service 'py2' was not changed"
check "...the build says which buildpack did not detect the app, and what to add" contains "$out" "static: not this app"
check "...no service py2 exists" contains "$(e service describe py2 2>&1 || true)" "not found"

out=$(e buildpack detect "$src/examples/apps/python-app")
check "buildpack detect says which buildpack builds a directory, and why" contains "$out" "Python 3.11 (requirements.txt) app detected (buildpack python)"
check "...and leaves no Build behind" bash -c "! grep -q detect- <<<\"\$1\"" _ "$(e build list)"

# --- the built image, read back by umoci and skopeo ---------------------------------------------
layout=$work/layout
python3 - "$data/images" "$digest1" "$layout" <<'PY'
import json, os, sys
store, digest, out = sys.argv[1:]
os.makedirs(out + "/blobs", exist_ok=True)
os.symlink(store + "/blobs/sha256", out + "/blobs/sha256")
size = os.path.getsize(store + "/blobs/sha256/" + digest.split(":")[1])
json.dump({"imageLayoutVersion": "1.0.0"}, open(out + "/oci-layout", "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": digest, "size": size, "annotations": {"org.opencontainers.image.ref.name": "built"}}]},
          open(out + "/index.json", "w"))
PY
inspect=$(skopeo inspect "oci:$layout:built")
check "skopeo inspect reads the built image's digest" contains "$inspect" "\"Digest\": \"$digest1\""
check "...and its entrypoint runs the Procfile's web process after .profile.d" python3 -c '
import json, sys, subprocess
cfg = json.loads(subprocess.check_output(["skopeo", "inspect", "--config", "oci:" + sys.argv[1] + ":built"]))
ep = cfg["config"]["Entrypoint"]
assert ep[:2] == ["/bin/sh", "-c"] and ".profile.d" in ep[2] and ep[2].endswith("exec python3 app.py"), ep
assert cfg["config"]["WorkingDir"] == "/workspace", cfg["config"]
assert cfg["history"][-1]["created_by"].startswith("elafros build"), cfg["history"][-1]
assert len(cfg["rootfs"]["diff_ids"]) == 2, cfg["rootfs"]' "$layout"
umoci unpack --rootless --image "$layout:built" "$work/unpacked" >/dev/null 2>&1 ||
  umoci unpack --image "$layout:built" "$work/unpacked" >/dev/null
check "umoci unpack gives the app under /workspace with its vendored package" [ -f "$work/unpacked/rootfs/workspace/.python/site-packages/greeting/__init__.py" ]
check "...on the builder's python3" [ -x "$work/unpacked/rootfs/usr/bin/python3.11" ]
check "...with the fixed mtime of 1980-01-01T00:00:01Z" [ "$(stat -c %Y "$work/unpacked/rootfs/workspace/app.py")" = 315532801 ]

if [ -f /sys/fs/cgroup/cpu/cpu.shares ]; then
  check "builds run under a cgroup parent with a lower CPU weight than instances" \
    [ "$(cat /sys/fs/cgroup/cpu/elafros-builds/cpu.shares)" = 512 ]
fi

# --- templates: substitution, defaults, a required parameter ------------------------------------
cat >"$work/template.yaml" <<'EOF'
apiVersion: build.knative.dev/v1alpha1
kind: BuildTemplate
metadata:
  name: greet
spec:
  parameters:
  - name: WHO
    description: who to greet
  - name: HOW
    default: Hello
  steps:
  - name: one
    image: busybox
    script: |
      echo "${HOW}, ${WHO}"
      sleep 2
  - name: two
    image: busybox
    command: [echo, "second step for ${WHO}"]
EOF
check "buildtemplate create -f" contains "$(e buildtemplate create -f "$work/template.yaml")" "BuildTemplate 'greet' created in namespace 'default'."
check "buildtemplate describe shows the required parameter" grep -qE "WHO +\(required\) +who to greet" <<<"$(e buildtemplate describe greet)"
if out=$(e build create nowho --template greet 2>&1); then fail "a missing required parameter is refused"; else
  check "a missing required parameter is refused, naming it" contains "$out" "requires the parameter WHO (who to greet); add --arg WHO=VALUE"
  check "...and no Build was created" [ "$(api /apis/build.knative.dev/v1alpha1/namespaces/default/builds/nowho | grep -c NotFound)" = 1 ]
fi
e build logs greet1 -f >"$work/follow.log" 2>&1 &  # before it exists: refused
wait $! && fail "build logs of a missing build fails" || pass "build logs of a missing build fails"
e build create greet1 --template greet --arg WHO=world >/dev/null
e build logs greet1 -f >"$work/follow.log" 2>&1 &
follower=$!
extra_pids+=($follower)
check "build logs -f shows the first step while the build still runs" wait_until 20 grep -q "^\[one\] Hello, world" "$work/follow.log"
check "...(it was Running then)" [ "$(reason greet1)" = Running ]
wait "$follower"
check "...and ends once the build is over, the steps in order" [ "$(cut -d' ' -f1 "$work/follow.log" | uniq | tr '\n' ' ')" = "[one] [two] " ]
check "the template's default and the argument were substituted" contains "$(cat "$work/follow.log")" "[two] second step for world"
check "build list shows it succeeded" grep -qE "^greet1 +True +Succeeded" <<<"$(e build list)"
check "build logs --step replays one step" [ "$(e build logs greet1 --step two)" = "[two] second step for world" ]

# --- failure, timeout and cancel: the reason, no leftovers, logs readable -----------------------
if out=$(e build create broken --step-image busybox --script 'echo compiling; echo "error: no such file" >&2; exit 3' -f 2>&1); then
  fail "a failing step fails the build"; else
  check "a failing step names the step and its exit code" contains "$out" 'step "build" exited with code 3'
  check "...and its last lines" contains "$out" "error: no such file"
  check "...and the command for full logs" contains "$out" "full logs: elafros build logs broken --step build"
fi
check "...its status is Failed" [ "$(reason broken)" = Failed ]
e build create slow --step-image busybox --script 'echo started; sleep 30' --timeout 2s >/dev/null
check "a step past the timeout gives BuildTimeout" wait_until 20 ended slow
check "...reason BuildTimeout" [ "$(reason slow)" = BuildTimeout ]
e build create cancelme --step-image busybox --script 'echo waiting; sleep 30' >/dev/null
check "a long build runs its step" wait_until 20 running_step cancelme 1
check "...whose first line arrives" wait_until 10 logs_have cancelme waiting
e build create queued --step-image busybox --script 'echo ran after the slot freed' >/dev/null
check "a build beyond build-max-concurrent waits, saying so" wait_until 10 bash -c "$elafros_bin --socket $sock build describe queued | grep -q 'waiting for a build slot: 1 build(s) run at once'"
check "...its reason is Pending" [ "$(reason queued)" = Pending ]
check "build cancel says so" contains "$(e build cancel cancelme)" "Build 'cancelme' cancelled"
check "a cancelled build ends BuildCancelled" wait_until 20 ended cancelme
check "...reason BuildCancelled" [ "$(reason cancelme)" = BuildCancelled ]
check "the waiting build then runs and succeeds" wait_until 20 ended queued
check "...Succeeded" [ "$(reason queued)" = Succeeded ]
check "failed, timed-out and cancelled builds leave no container, mount, cgroup or workspace" wait_until 10 no_leftovers
metrics=$(api /metrics)
check "/metrics counts the timed-out build" contains "$metrics" 'elafros_builds_finished_total{reason="BuildTimeout"} 1'
check "...the cancelled one" contains "$metrics" 'elafros_builds_finished_total{reason="BuildCancelled"} 1'
check "...and the running and waiting ones" grep -qE '^elafros_builds_running [01]$' <<<"$metrics"
check "the failed build's logs stay readable" contains "$(e build logs broken)" "[build] error: no such file"
check "the timed-out build's logs stay readable" [ "$(e build logs slow)" = "[build] started" ]
check "the cancelled build's logs stay readable" [ "$(e build logs cancelme)" = "[build] waiting" ]

# --- a git source -------------------------------------------------------------------------------
repo=$work/repo
git init -q -b main "$repo"
echo "version one" >"$repo/VERSION"
git -C "$repo" add VERSION && git -C "$repo" -c user.email=t@e -c user.name=t commit -qm one && git -C "$repo" tag v1
echo "version two" >"$repo/VERSION"
git -C "$repo" -c user.email=t@e -c user.name=t commit -qam two
e build create fromgit --git "file://$repo#v1" --step-image busybox --script 'cat VERSION' -f >"$work/git.log" 2>&1
check "a git source is cloned at the revision asked for" contains "$(cat "$work/git.log")" "[build] version one"
check "...the clone shows as its own step" contains "$(e build describe fromgit)" "git-source"

# --- bad input: a clear error, nothing created --------------------------------------------------
before=$(ls "$data/builds/sources/sha256" | wc -l)
if out=$(e build create badtpl --template nosuch 2>&1); then fail "an unknown template is refused"; else
  check "an unknown template is refused, naming it" contains "$out" 'no BuildTemplate "nosuch"'; fi
if out=$(e build create badimg --step-image nosuch:1 --source "$src/examples/apps/static-site" 2>&1); then fail "a step image not in the store is refused"; else
  check "a step image not in the store is refused" contains "$out" 'image "nosuch:1" is not in the local image store'; fi
check "...and its source was not uploaded" [ "$(ls "$data/builds/sources/sha256" | wc -l)" = "$before" ]
if out=$(e build create badgit --git "file://$work/no-such-repo" --step-image busybox --script true 2>&1); then fail "a git URL that does not exist is refused"; else
  check "a git URL that does not exist is refused" contains "$out" "is not a git repository elafrosd can read"; fi
if out=$(e build create badrev --git "file://$repo#nosuch" --step-image busybox --script true 2>&1); then fail "a git revision that does not exist is refused"; else
  check "a git revision that does not exist is refused" contains "$out" 'has no branch or tag "nosuch"'; fi
python3 - "$work" <<'PY'
import io, sys, tarfile
def make(path, name, kind=tarfile.REGTYPE, link=""):
    with tarfile.open(path, "w") as t:
        i = tarfile.TarInfo(name); i.type = kind; i.linkname = link
        data = b"" if kind != tarfile.REGTYPE else b"x"
        i.size = len(data); t.addfile(i, io.BytesIO(data))
make(sys.argv[1] + "/dotdot.tar", "../escape")
make(sys.argv[1] + "/absolute.tar", "/etc/evil")
make(sys.argv[1] + "/symlink.tar", "link", tarfile.SYMTYPE, "../../etc/passwd")
PY
for t in dotdot absolute symlink; do
  out=$(curl -s --unix-socket "$sock" -X POST -H 'Content-Type: application/x-tar' --data-binary @"$work/$t.tar" "http://elafrosd/apis/elafros.dev/v1/namespaces/default/buildsources")
  check "a source tar with $t entries is refused, naming the entry" contains "$out" "the source archive's entry"
done
check "...and nothing was stored" [ "$(ls "$data/builds/sources/sha256" | wc -l)" = "$before" ]
ln -s /etc/passwd "$work/badsrc-link" && mkdir "$work/badsrc" && mv "$work/badsrc-link" "$work/badsrc/passwd"
if out=$(e build create badsrc --source "$work/badsrc" --step-image busybox --script true 2>&1); then fail "an absolute symlink in --source is refused"; else
  check "an absolute symlink in --source is refused before uploading" contains "$out" "is a symlink to \"/etc/passwd\", which is absolute"; fi

# --- kill -9 mid-build, and logs across restarts ------------------------------------------------
e build create crash --step-image busybox --script 'echo before the crash; sleep 60' >/dev/null
check "the build to be interrupted runs" wait_until 20 running_step crash 1
check "...whose first line arrives" wait_until 10 logs_have crash "before the crash"
kill -KILL "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
start_daemon
check "a build interrupted by kill -9 is marked failed, saying the daemon restarted" wait_until 20 ended crash
check "...reason DaemonRestarted" [ "$(reason crash)" = DaemonRestarted ]
check "...its containers were cleaned up" wait_until 10 no_leftovers
check "...its logs survived" [ "$(e build logs crash)" = "[build] before the crash" ]
check "logs of earlier builds survive the restart" [ "$(e build logs greet1 --step two)" = "[two] second step for world" ]
check "build delete removes it" contains "$(e build delete broken)" "Build 'broken' deleted"

# Usage: the builds' run time is charged to their namespace.
build_seconds() { e usage --by namespace -o json | python3 -c 'import json,sys; print(sum(i["build_seconds"] for i in json.load(sys.stdin)["items"] if i["namespace"] == "default"))'; }
some_build_time() { python3 -c "import sys; sys.exit(0 if $(build_seconds) > 1 else 1)"; }
check "usage has the namespace's build-seconds" wait_until 5 some_build_time
echo "     build-seconds of namespace default: $(build_seconds)"

finish
