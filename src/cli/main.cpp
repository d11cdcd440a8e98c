// elafros: the command-line client. Verbs and flags follow kn's where kn has them.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/completion.hpp"
#include "version.hpp"

using namespace elafros::cli;

int main(int argc, char** argv) {
  CLI::App app{"elafros: deploy and run serverless services on one machine (kn-compatible verbs)"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags (-o, -n, --socket) may follow the subcommand, as in kn
  Globals g;
  const char* env_socket = std::getenv("ELAFROS_SOCKET");
  g.socket = env_socket && *env_socket ? env_socket : "/run/elafros/elafros.sock";
  app.add_option("--socket", g.socket,
                 "elafrosd's API socket (default $ELAFROS_SOCKET or /run/elafros/elafros.sock)");
  app.add_option("-n,--namespace", g.ns, "namespace (default \"default\")");
  app.add_option("-o,--output", g.output, "output format: table, json or yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}));
  app.set_version_flag("--version", std::string(elafros::kVersion));

  std::string name, to, file, reference, image_name, service_filter;
  TemplateChanges t;
  TrafficChanges traffic;
  WaitOptions w;
  bool with_revisions = false;
  std::string image, cmd, revision_name;
  std::vector<std::string> args;
  int port = 0;
  int concurrency_limit = -1;

  auto template_flags = [&](CLI::App* c) {
    c->add_option("-e,--env", t.env,
                  "environment variable NAME=VALUE, or NAME- to unset (repeatable)");
    c->add_option("--port", port, "port the app listens on, passed as $PORT (default 8080)")
        ->check(CLI::Range(1, 65535));
    c->add_option("--cmd", cmd, "command to run instead of the image's entrypoint");
    c->add_option("--arg", args, "argument for the command (repeatable)");
    c->add_option("--revision-name", revision_name,
                  "name of the new revision (default NAME-0000N)");
    c->add_option("--limit", t.limits,
                  "resource limits, e.g. cpu=500m,memory=128Mi; memory- removes one (repeatable)");
    c->add_option("--request", t.requests,
                  "resource requests, e.g. cpu=100m,memory=64Mi; cpu- removes one (repeatable)");
    c->add_option("--concurrency-limit", concurrency_limit,
                  "hard limit of requests in flight per instance (0: none)")
        ->check(CLI::Range(0, 1000));
    auto scale = [&](const char* flag, const char* annotation, const char* help) {
      c->add_option_function<std::string>(
          flag,
          [&t, annotation](const std::string& v) {
            t.annotations.emplace_back(std::string("autoscaling.knative.dev/") + annotation, v);
          },
          help);
    };
    scale("--scale-min", "min-scale",
          "minimum number of instances (autoscaling.knative.dev/min-scale)");
    scale("--scale-max", "max-scale", "maximum number of instances (max-scale)");
    scale("--scale-init", "initial-scale", "instances a new revision starts with (initial-scale)");
    scale("--scale-target", "target",
          "in-flight requests (or rps) per instance to aim for (target)");
    scale("--scale-utilization", "target-utilization-percentage",
          "percent of the target to aim at (default 70)");
    scale("--scale-window", "window", "stable window, e.g. 60s (6s to 1h)");
    scale("--scale-metric", "metric", "concurrency or rps");
    scale("--scale-down-delay", "scale-down-delay",
          "how long a lower scale must hold before scaling down, e.g. 30s");
    c->add_option_function<int>(
        "--scale",
        [&t](int n) {
          t.annotations.emplace_back("autoscaling.knative.dev/min-scale", std::to_string(n));
          t.annotations.emplace_back("autoscaling.knative.dev/max-scale", std::to_string(n));
        },
        "exactly this many instances (min-scale = max-scale)");
  };
  auto wait_flags = [&](CLI::App* c) {
    c->add_option("--wait-timeout", w.timeout_seconds,
                  "seconds to wait for the service to become ready (default 600)")
        ->check(CLI::PositiveNumber);
    c->add_flag("--no-wait", w.no_wait, "return without waiting for the service to be ready");
  };

  auto* service = app.add_subcommand("service", "manage services")->require_subcommand(1);
  auto* create = service->add_subcommand("create", "create a service and wait until it is ready");
  create->add_option("name", name, "service name (a DNS-1035 label)")->required();
  create->add_option("--image", image, "image: oci:DIR[:TAG] or the name of an imported image")
      ->required();
  template_flags(create);
  wait_flags(create);
  auto* update = service->add_subcommand(
      "update", "change a service: a changed template makes a new revision");
  update->add_option("name", name, "service name")->required();
  update->add_option("--image", image, "new image: oci:DIR[:TAG] or an imported image's name");
  template_flags(update);
  update->add_option(
      "--traffic", traffic.traffic,
      "traffic split KEY=PERCENT[,KEY=PERCENT…]; KEY is a revision, @latest or a tag (repeatable)");
  update->add_option(
      "--tag", traffic.tags,
      "tag a revision: REVISION=TAG (REVISION may be @latest); the tag gets its own URL");
  update->add_option("--untag", traffic.untags, "remove a tag (repeatable)");
  wait_flags(update);
  auto* rollback = service->add_subcommand(
      "rollback", "send 100% of the traffic to the previous ready revision");
  rollback->add_option("name", name, "service name")->required();
  rollback->add_option("--to", to,
                       "the revision to roll back to (default: the previous ready one)");
  wait_flags(rollback);
  auto* list = service->add_subcommand("list", "list services");
  auto* describe =
      service->add_subcommand("describe", "show a service, its revisions, traffic and conditions");
  describe->add_option("name", name, "service name")->required();
  auto* exp =
      service->add_subcommand("export", "print a service as Knative YAML that 'apply' takes back");
  exp->add_option("name", name, "service name")->required();
  exp->add_flag("--with-revisions", with_revisions,
                "also export every revision, as documents replayed in order");
  auto* del = service->add_subcommand("delete", "delete a service and stop its instances");
  del->add_option("name", name, "service name")->required();

  auto* revision = app.add_subcommand("revision", "manage revisions")->require_subcommand(1);
  auto* rlist = revision->add_subcommand("list", "list revisions, newest first");
  rlist->add_option("-s,--service", service_filter, "only the revisions of this service");
  auto* rdescribe = revision->add_subcommand("describe", "show a revision");
  rdescribe->add_option("name", name, "revision name")->required();
  auto* rdelete =
      revision->add_subcommand("delete", "delete a revision that gets no traffic and has no tag");
  rdelete->add_option("name", name, "revision name")->required();

  auto* apply =
      app.add_subcommand("apply", "create or update services from Knative YAML (multi-document)");
  apply->add_option("-f,--filename", file, "YAML file, or - for standard input")->required();
  wait_flags(apply);

  auto* img = app.add_subcommand("image", "manage images")->require_subcommand(1);
  auto* imp = img->add_subcommand("import", "import an image into elafrosd's image store");
  imp->add_option("reference", reference,
                  "oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:NAME:TAG] or "
                  "docker://HOST/REPO[:TAG|@DIGEST]")
      ->required();
  imp->add_option("--name", image_name, "name to store it under (default DIR:TAG)");
  auto* pull = img->add_subcommand(
      "pull", "pull an image from a registry (again, if stored), e.g. docker.io/library/nginx");
  pull->add_option("reference", reference, "[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST]")->required();
  pull->add_option("--name", image_name, "name to store it under (default: the full reference)");
  auto* ilist = img->add_subcommand("list", "list images");
  auto* irm = img->add_subcommand("rm", "remove an image no revision uses");
  irm->add_option("name", image_name, "image name")->required();
  auto* iprune =
      img->add_subcommand("prune", "remove images no revision uses, and free their space");
  auto* reg = app.add_subcommand("registry", "manage registry logins")->require_subcommand(1);
  std::string registry_host, username;
  bool password_stdin = false;
  auto* login = reg->add_subcommand(
      "login", "log in to a registry; elafrosd keeps the login (mode 0600) for its pulls");
  login->add_option("host", registry_host, "HOST[:PORT] of the registry")->required();
  login->add_option("-u,--username", username, "user name")->required();
  login->add_flag("--password-stdin", password_stdin, "read the password from standard input");
  auto* logout = reg->add_subcommand("logout", "remove a registry login");
  logout->add_option("host", registry_host, "HOST[:PORT]")->required();
  auto* reglist = reg->add_subcommand("list", "list registry logins (never their passwords)");
  LogsOptions lo;
  auto* logs_cmd = app.add_subcommand(
      "logs", "show what a service's instances wrote to stdout and stderr, in time order");
  logs_cmd->add_option("service", name, "service name")->required();
  logs_cmd->add_option("--revision", lo.revision, "only this revision");
  logs_cmd->add_option("--instance", lo.instance, "only this instance");
  logs_cmd->add_flag("-f,--follow", lo.follow, "keep streaming new lines, from new instances too");
  logs_cmd->add_option("--tail", lo.tail, "only the last N lines")->check(CLI::NonNegativeNumber);
  logs_cmd->add_option("--since", lo.since, "only lines newer than this, e.g. 10m, 1h30m");
  logs_cmd->add_flag("--timestamps", lo.timestamps, "prefix each line with its time (UTC)");
  auto* stat = app.add_subcommand("status", "show the daemon's state");
  auto* kubecfg = app.add_subcommand(
      "kubeconfig",
      "print a kubeconfig for the HTTPS API (elafrosd --api-listen): server, CA and admin "
      "token, for kubectl --kubeconfig FILE");
  auto* inst = app.add_subcommand("instance", "see instances (containers)")->require_subcommand(1);
  auto* ilist_inst = inst->add_subcommand("list", "list instances: pid, port and phase");
  ilist_inst->add_option("-s,--service", service_filter, "only the instances of this service");
  auto* sys = app.add_subcommand("system", "operate the daemon")->require_subcommand(1);
  auto* stop_all = sys->add_subcommand(
      "stop-all",
      "stop every instance and launch none until 'system start-all' or a daemon restart (then "
      "'systemctl stop elafrosd' takes everything down)");
  auto* start_all =
      sys->add_subcommand("start-all", "undo 'stop-all': instances start again as they should");
  std::string shell;
  auto* completion = app.add_subcommand("completion", "print a shell completion script");
  completion->add_option("shell", shell, "bash")->required()->check(CLI::IsMember({"bash"}));

  CLI11_PARSE(app, argc, argv);
  if (!image.empty()) t.image = image;
  if (port) t.port = port;
  if (!cmd.empty()) t.cmd = cmd;
  if (!args.empty()) t.args = args;
  if (!revision_name.empty()) t.revision_name = revision_name;
  if (concurrency_limit >= 0) t.concurrency_limit = concurrency_limit;

  ApiClient api(g.socket);
  try {
    if (create->parsed()) return service_create(api, g, name, t, w);
    if (update->parsed()) return service_update(api, g, name, t, traffic, w);
    if (rollback->parsed()) return service_rollback(api, g, name, to, w);
    if (list->parsed()) return service_list(api, g);
    if (describe->parsed()) return service_describe(api, g, name);
    if (exp->parsed()) return service_export(api, g, name, with_revisions);
    if (del->parsed()) return service_delete(api, g, name);
    if (rlist->parsed()) return revision_list(api, g, service_filter);
    if (rdescribe->parsed()) return revision_describe(api, g, name);
    if (rdelete->parsed()) return revision_delete(api, g, name);
    if (apply->parsed()) return apply_file(api, g, file, w);
    if (imp->parsed()) return image_import(api, g, reference, image_name);
    if (pull->parsed())
      return image_import(
          api, g, reference.rfind("docker://", 0) == 0 ? reference : "docker://" + reference,
          image_name);
    if (login->parsed()) return registry_login(api, g, registry_host, username, password_stdin);
    if (logout->parsed()) return registry_logout(api, g, registry_host);
    if (reglist->parsed()) return registry_list(api, g);
    if (ilist->parsed()) return image_list(api, g);
    if (irm->parsed()) return image_rm(api, g, image_name);
    if (iprune->parsed()) return image_prune(api, g);
    if (stat->parsed()) return status(api, g);
    if (kubecfg->parsed()) return kubeconfig(api, g);
    if (completion->parsed()) {
      std::cout << bash_completion(app);
      return 0;
    }
    if (stop_all->parsed()) return system_stop_all(api, g);
    if (ilist_inst->parsed()) return instance_list(api, g, service_filter);
    if (start_all->parsed()) return system_start_all(api, g);
    if (logs_cmd->parsed()) return logs(api, g, name, lo);
  } catch (const std::exception& e) {
    std::cerr << "Error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
