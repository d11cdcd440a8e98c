// elafros source ping|binding|container|apiserver create|update|describe|list|delete,
// source list, source list-types, and eventtype create|list|describe|delete: kn's verbs, flags
// and messages (docs/architecture.md, "Sources").

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <iostream>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "elafros/base64.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

struct SourceKind {
  const char* command;  // "ping"
  const char* kind;     // "PingSource"
  const char* plural;   // "pingsources"
  const char* label;    // "Ping source", as kn says it
};

const SourceKind kPing{"ping", "PingSource", "pingsources", "Ping source"};
const SourceKind kBinding{"binding", "SinkBinding", "sinkbindings", "Sink binding"};
const SourceKind kContainer{"container", "ContainerSource", "containersources", "Container source"};
const SourceKind kApiServer{"apiserver", "ApiServerSource", "apiserversources", "ApiServer source"};
const SourceKind* const kKinds[] = {&kApiServer, &kBinding, &kContainer, &kPing};

std::string path_of(const Globals& g, const SourceKind& k) {
  return fmt::format("/apis/sources.knative.dev/v1/namespaces/{}/{}", g.ns, k.plural);
}

// Every flag of every source kind; each kind reads its own.
struct SourceFlags {
  std::string sink;
  std::vector<std::string> ce_overrides;  // KEY=VALUE, or KEY- to remove
  // ping
  std::string schedule, data, encoding, timezone, content_type;
  // binding
  std::string subject;
  // container
  std::string image;
  std::vector<std::string> env, args, command;
  // apiserver
  std::vector<std::string> resources;
  std::string mode, service_account;
};

void set_overrides(json::object& spec, const std::vector<std::string>& items) {
  if (items.empty()) return;
  json::value& ov = spec["ceOverrides"];
  if (!ov.is_object()) ov = json::object{};
  json::value& ext = ov.as_object()["extensions"];
  if (!ext.is_object()) ext = json::object{};
  for (const auto& item : items) {
    if (item.size() > 1 && item.back() == '-' && item.find('=') == std::string::npos) {
      ext.as_object().erase(item.substr(0, item.size() - 1));
      continue;
    }
    auto [k, v] = split_assignment(item, "--ce-override");
    ext.as_object()[k] = v;
  }
  if (ext.as_object().empty()) spec.erase("ceOverrides");
}

// "key=value,..." as a LabelSelector's matchLabels.
json::object match_labels(const std::string& text, const char* flag) {
  json::object labels;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto [k, v] = split_assignment(text.substr(start, comma - start), flag);
    labels[k] = v;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return json::object{{"matchLabels", std::move(labels)}};
}

// "Kind:apiVersion:name" or "Kind:apiVersion:key=value,..." (a label selector).
json::object subject_of(const std::string& text) {
  auto a = text.find(':');
  auto b = a == std::string::npos ? a : text.find(':', a + 1);
  if (b == std::string::npos)
    throw std::runtime_error(
        fmt::format("--subject \"{}\": use Kind:apiVersion:name or Kind:apiVersion:key=value (e.g. "
                    "Service:serving.knative.dev/v1:hello)",
                    text));
  json::object s{{"kind", text.substr(0, a)}, {"apiVersion", text.substr(a + 1, b - a - 1)}};
  std::string rest = text.substr(b + 1);
  if (rest.find('=') == std::string::npos)
    s["name"] = rest;
  else
    s["selector"] = match_labels(rest, "--subject");
  return s;
}

// "Kind:apiVersion[:key=value,...]", kn's --resource.
json::object resource_of(const std::string& text) {
  auto a = text.find(':');
  if (a == std::string::npos)
    throw std::runtime_error(
        fmt::format("--resource \"{}\": use Kind:apiVersion[:key=value] (e.g. "
                    "Service:serving.knative.dev/v1)",
                    text));
  auto b = text.find(':', a + 1);
  json::object r{{"kind", text.substr(0, a)},
                 {"apiVersion", text.substr(a + 1, b == std::string::npos ? b : b - a - 1)}};
  if (b != std::string::npos && b + 1 < text.size())
    r["selector"] = match_labels(text.substr(b + 1), "--resource");
  return r;
}

// The flags given, onto a source's spec (create: a new one; update: the stored one).
void apply_flags(const SourceKind& k, json::object& spec, const SourceFlags& f, bool create) {
  if (!f.sink.empty()) spec["sink"] = sink_destination(f.sink);
  set_overrides(spec, f.ce_overrides);
  if (&k == &kPing) {
    if (!f.schedule.empty()) spec["schedule"] = f.schedule;
    if (!f.timezone.empty()) spec["timezone"] = f.timezone;
    if (!f.content_type.empty()) spec["contentType"] = f.content_type;
    if (!f.data.empty()) {
      spec.erase("data");
      spec.erase("dataBase64");
      // Unlike kn, data is text unless --encoding base64 says otherwise (kn guesses, and turns
      // "test" into base64).
      if (f.encoding == "base64") {
        if (!base64_decode(f.data))
          throw std::runtime_error(
              "--data is not base64 (RFC 4648, padded), but --encoding "
              "base64 says it is");
        spec["dataBase64"] = f.data;
      } else {
        spec["data"] = f.data;
      }
    }
  } else if (&k == &kBinding) {
    if (!f.subject.empty()) spec["subject"] = subject_of(f.subject);
    if (create && f.subject.empty())
      throw std::runtime_error(
          "source binding create needs --subject (e.g. Service:serving.knative.dev/v1:hello)");
  } else if (&k == &kContainer) {
    if (create && f.image.empty())
      throw std::runtime_error("source container create needs --image");
    json::value& t = spec["template"];
    if (!t.is_object())
      t = json::object{{"spec", json::object{{"containers", json::array{json::object{}}}}}};
    json::value& c = t.as_object()["spec"].as_object()["containers"].as_array().at(0);
    if (!f.image.empty()) c.as_object()["image"] = f.image;
    if (!f.env.empty()) {
      json::array env;
      for (const auto& e : f.env) {
        auto [name, value] = split_assignment(e, "--env");
        env.push_back(json::object{{"name", name}, {"value", value}});
      }
      c.as_object()["env"] = std::move(env);
    }
    if (!f.args.empty()) c.as_object()["args"] = json::value_from(f.args);
    if (!f.command.empty()) c.as_object()["command"] = json::value_from(f.command);
  } else if (&k == &kApiServer) {
    if (!f.resources.empty()) {
      json::array resources;
      for (const auto& r : f.resources) resources.push_back(resource_of(r));
      spec["resources"] = std::move(resources);
    }
    if (create && f.resources.empty())
      throw std::runtime_error(
          "source apiserver create needs --resource (e.g. Service:serving.knative.dev/v1)");
    if (!f.mode.empty()) spec["mode"] = f.mode;
    if (!f.service_account.empty()) spec["serviceAccountName"] = f.service_account;
  }
  if (create && f.sink.empty())
    throw std::runtime_error(fmt::format(
        "source {} create needs --sink (e.g. broker:default or ksvc:hello)", k.command));
}

int source_create(const ApiClient& api, const Globals& g, const SourceKind& k,
                  const std::string& name, const SourceFlags& f) {
  json::object spec;
  apply_flags(k, spec, f, true);
  json::value body = json::object{{"apiVersion", "sources.knative.dev/v1"},
                                  {"kind", k.kind},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", std::move(spec)}};
  json::value out = api.call("POST", path_of(g, k), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("{} '{}' created in namespace '{}'.\n", k.label, name, g.ns);
  return 0;
}

int source_update(const ApiClient& api, const Globals& g, const SourceKind& k,
                  const std::string& name, const SourceFlags& f) {
  json::value o = api.call("GET", path_of(g, k) + "/" + name);
  json::value& spec = o.as_object()["spec"];
  if (!spec.is_object()) spec = json::object{};
  apply_flags(k, spec.as_object(), f, false);
  o.as_object().erase("status");
  json::value out = api.call("PUT", path_of(g, k) + "/" + name, &o);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("{} '{}' updated in namespace '{}'.\n", k.label, name, g.ns);
  return 0;
}

std::string sink_of(const json::value& o) {
  const json::value* spec = o.as_object().if_contains("spec");
  if (!spec || !spec->is_object()) return "";
  const json::value* sink = spec->as_object().if_contains("sink");
  return sink ? destination_text(*sink) : "";
}

// What a source watches or binds, for the lists: its schedule, subject, image or resources.
std::string resource_text(const SourceKind& k, const json::value& o) {
  if (&k == &kPing)
    return field(o, "spec.schedule").empty() ? "* * * * *" : field(o, "spec.schedule");
  if (&k == &kBinding) {
    std::string name = field(o, "spec.subject.name");
    return field(o, "spec.subject.kind") + ":" + (name.empty() ? "(selector)" : name);
  }
  if (&k == &kContainer) {
    auto cs = array_at(o, {"spec", "template", "spec", "containers"});
    return cs.empty() ? "" : field(cs[0], "image");
  }
  std::string out;
  for (const auto& r : array_at(o, {"spec", "resources"}))
    out += (out.empty() ? "" : ",") + field(r, "kind") + ":" + field(r, "apiVersion");
  return out;
}

int source_list(const ApiClient& api, const Globals& g, const SourceKind& k) {
  json::value list = api.call("GET", path_of(g, k));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) {
    std::cout << fmt::format("No {} sources found.\n", k.command);
    return 0;
  }
  const char* what = &k == &kPing        ? "SCHEDULE"
                     : &k == &kBinding   ? "SUBJECT"
                     : &k == &kContainer ? "IMAGE"
                                         : "RESOURCES";
  std::vector<std::vector<std::string>> rows{
      {"NAME", what, "SINK", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (const auto& o : items)
    rows.push_back({field(o, "metadata.name"), resource_text(k, o), sink_of(o),
                    age(field(o, "metadata.creationTimestamp")), condition_summary(o),
                    condition_status(o, "Ready"), ready_reason(o)});
  std::cout << table(rows);
  return 0;
}

int source_describe(const ApiClient& api, const Globals& g, const SourceKind& k,
                    const std::string& name) {
  json::value o = api.call("GET", path_of(g, k) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format("Name:         {}\nNamespace:    {}\nAge:          {}\n", name, g.ns,
                           age(field(o, "metadata.creationTimestamp")));
  if (&k == &kPing) {
    std::cout << fmt::format("Schedule:     {}\nTimezone:     {}\n", resource_text(k, o),
                             field(o, "spec.timezone").empty() ? "UTC" : field(o, "spec.timezone"));
    if (!field(o, "spec.data").empty())
      std::cout << "Data:         " << field(o, "spec.data") << "\n";
    if (!field(o, "spec.dataBase64").empty())
      std::cout << "Data (base64): " << field(o, "spec.dataBase64") << "\n";
  } else if (&k == &kApiServer) {
    std::cout << fmt::format("Mode:         {}\nResources:    {}\n", field(o, "spec.mode"),
                             resource_text(k, o));
  } else {
    std::cout << fmt::format("{}      {}\n",
                             &k == &kBinding ? "Subject:" : "Image:  ", resource_text(k, o));
  }
  std::cout << fmt::format("Sink:         {}\nSink URI:     {}\n", sink_of(o),
                           field(o, "status.sinkUri"));
  if (const auto* ov = o.at("spec").as_object().if_contains("ceOverrides"); ov && ov->is_object())
    if (const auto* ext = ov->as_object().if_contains("extensions"); ext && ext->is_object())
      for (const auto& kv : ext->as_object())
        std::cout << fmt::format("CE override:  {}={}\n", std::string_view(kv.key()),
                                 kv.value().is_string() ? kv.value().get_string() : "");
  print_conditions(o);
  return 0;
}

// Every source of every kind: kn's 'source list'.
int source_list_all(const ApiClient& api, const Globals& g, const std::vector<std::string>& types) {
  std::vector<std::vector<std::string>> rows{{"NAME", "TYPE", "RESOURCE", "SINK", "READY"}};
  json::array all;
  for (const SourceKind* k : kKinds) {
    if (!types.empty() && std::find(types.begin(), types.end(), k->kind) == types.end()) continue;
    json::value list = api.call("GET", path_of(g, *k));
    for (auto& o : array_at(list, {"items"})) {
      rows.push_back({field(o, "metadata.name"), k->kind,
                      fmt::format("{}.sources.knative.dev", k->plural), sink_of(o),
                      condition_status(o, "Ready")});
      all.push_back(std::move(o));
    }
  }
  if (g.output != "table")
    return print(g, json::object{{"apiVersion", "v1"}, {"kind", "List"}, {"items", all}}), 0;
  if (rows.size() == 1) return std::cout << "No sources found.\n", 0;
  std::cout << table(rows);
  return 0;
}

int source_list_types(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", "/apis/elafros.dev/v1/sourcetypes");
  if (g.output != "table") return print(g, list), 0;
  std::vector<std::vector<std::string>> rows{{"TYPE", "S", "NAME", "DESCRIPTION"}};
  std::vector<std::vector<std::string>> types{{"TYPE", "EVENT TYPES"}};
  for (const auto& t : array_at(list, {"items"})) {
    rows.push_back({field(t, "kind"), "X", field(t, "name"), field(t, "description")});
    std::string emitted;
    for (const auto& e : array_at(t, {"eventTypes"}))
      if (e.is_string()) emitted += (emitted.empty() ? "" : ", ") + std::string(e.get_string());
    types.push_back({field(t, "kind"), emitted.empty() ? "(any: the workload decides)" : emitted});
  }
  std::cout << table(rows) << "\n" << table(types);
  return 0;
}

// --- eventtype --------------------------------------------------------------------------------

struct EventTypeFlags {
  std::string type, source, broker, description, schema;
};

std::string eventtypes_path(const Globals& g) {
  return fmt::format("/apis/eventing.knative.dev/v1beta2/namespaces/{}/eventtypes", g.ns);
}

int eventtype_create(const ApiClient& api, const Globals& g, const std::string& name,
                     const EventTypeFlags& f) {
  json::object spec{{"type", f.type}};
  if (!f.source.empty()) spec["source"] = f.source;
  if (!f.description.empty()) spec["description"] = f.description;
  if (!f.schema.empty()) spec["schema"] = f.schema;
  if (!f.broker.empty())
    spec["reference"] = json::object{
        {"apiVersion", "eventing.knative.dev/v1"}, {"kind", "Broker"}, {"name", f.broker}};
  json::value body = json::object{{"apiVersion", "eventing.knative.dev/v1beta2"},
                                  {"kind", "EventType"},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", std::move(spec)}};
  json::value out = api.call("POST", eventtypes_path(g), &body);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Eventtype '{}' successfully created in namespace '{}'.\n", name, g.ns);
  return 0;
}

std::string reference_text(const json::value& o) {
  std::string kind = field(o, "spec.reference.kind");
  return kind.empty() ? "" : fmt::format("{}:{}", kind, field(o, "spec.reference.name"));
}

int eventtype_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", eventtypes_path(g));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) return std::cout << "No eventtypes found.\n", 0;
  std::vector<std::vector<std::string>> rows{
      {"NAME", "TYPE", "SOURCE", "REFERENCE", "AGE", "READY"}};
  for (const auto& o : items)
    rows.push_back({field(o, "metadata.name"), field(o, "spec.type"), field(o, "spec.source"),
                    reference_text(o), age(field(o, "metadata.creationTimestamp")),
                    condition_status(o, "Ready")});
  std::cout << table(rows);
  return 0;
}

int eventtype_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value o = api.call("GET", eventtypes_path(g) + "/" + name);
  if (g.output != "table") return print(g, o), 0;
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nAge:          {}\nType:         {}\nSource:       {}\n"
      "Reference:    {}\nDescription:  {}\n",
      name, g.ns, age(field(o, "metadata.creationTimestamp")), field(o, "spec.type"),
      field(o, "spec.source"), reference_text(o), field(o, "spec.description"));
  print_conditions(o);
  return 0;
}

}  // namespace

void add_source_commands(CLI::App& app, Session& s) {
  auto name = std::make_shared<std::string>();
  auto flags = std::make_shared<SourceFlags>();
  auto* source = app.add_subcommand("source", "manage event sources")->require_subcommand(1);
  for (const SourceKind* k : kKinds) {
    auto* group = source->add_subcommand(k->command, fmt::format("manage {}s", k->kind))
                      ->require_subcommand(1);
    auto common = [k, flags](CLI::App* c) {
      c->add_option("--sink,-s", flags->sink,
                    "where events go: broker:NAME, ksvc:NAME[:NAMESPACE], NAME, or a URL");
      c->add_option("--ce-override", flags->ce_overrides,
                    "KEY=VALUE: an extension set on every event (KEY- removes it)");
      if (k == &kPing) {
        c->add_option("--schedule", flags->schedule,
                      "cron schedule, 5 fields or 6 with seconds first, or @hourly etc. "
                      "(default \"* * * * *\")");
        c->add_option("--data,-d", flags->data, "the events' data");
        c->add_option("--encoding,-e", flags->encoding, "text (default) or base64")
            ->check(CLI::IsMember({"text", "base64"}));
        c->add_option("--timezone", flags->timezone,
                      "IANA time zone of the schedule (default UTC)");
        c->add_option("--content-type", flags->content_type, "the data's content type");
      } else if (k == &kBinding) {
        c->add_option("--subject", flags->subject,
                      "Kind:apiVersion:name or Kind:apiVersion:key=value (a label selector)");
      } else if (k == &kContainer) {
        c->add_option("--image", flags->image, "the container image");
        c->add_option("--env", flags->env, "NAME=VALUE: an environment variable");
        c->add_option("--arg", flags->args, "an argument of the container's command");
        c->add_option("--cmd", flags->command, "the container's command (replaces its entrypoint)");
      } else {
        c->add_option("--resource", flags->resources,
                      "Kind:apiVersion[:key=value]: a kind to watch (repeatable)");
        c->add_option("--mode", flags->mode, "Reference (default) or Resource")
            ->check(CLI::IsMember({"Reference", "Resource"}));
        c->add_option("--service-account", flags->service_account, "accepted, not used");
      }
    };
    auto* create = group->add_subcommand("create", fmt::format("create a {}", k->kind));
    create->add_option("name", *name, "source name")->required();
    common(create);
    create->callback([&s, k, name, flags] {
      s.run = [&s, k, name, flags](const ApiClient& api) {
        return source_create(api, s.g, *k, *name, *flags);
      };
    });
    auto* update = group->add_subcommand("update", fmt::format("change a {}", k->kind));
    update->add_option("name", *name, "source name")->required();
    common(update);
    update->callback([&s, k, name, flags] {
      s.run = [&s, k, name, flags](const ApiClient& api) {
        return source_update(api, s.g, *k, *name, *flags);
      };
    });
    group->add_subcommand("list", fmt::format("list {}s", k->kind))->callback([&s, k] {
      s.run = [&s, k](const ApiClient& api) { return source_list(api, s.g, *k); };
    });
    auto* describe = group->add_subcommand("describe", fmt::format("show a {}", k->kind));
    describe->add_option("name", *name, "source name")->required();
    describe->callback([&s, k, name] {
      s.run = [&s, k, name](const ApiClient& api) { return source_describe(api, s.g, *k, *name); };
    });
    auto* remove = group->add_subcommand("delete", fmt::format("delete a {}", k->kind));
    remove->add_option("name", *name, "source name")->required();
    remove->callback([&s, k, name] {
      s.run = [&s, k, name](const ApiClient& api) {
        api.call("DELETE", path_of(s.g, *k) + "/" + *name);
        std::cout << fmt::format("{} '{}' deleted in namespace '{}'.\n", k->label, *name, s.g.ns);
        return 0;
      };
    });
  }
  auto types = std::make_shared<std::vector<std::string>>();
  auto* list = source->add_subcommand("list", "list the sources of every kind");
  list->add_option("--type,-t", *types, "only this kind (PingSource, SinkBinding, ...)");
  list->callback([&s, types] {
    s.run = [&s, types](const ApiClient& api) { return source_list_all(api, s.g, *types); };
  });
  source->add_subcommand("list-types", "the source kinds, what they do and the events they emit")
      ->callback(
          [&s] { s.run = [&s](const ApiClient& api) { return source_list_types(api, s.g); }; });

  auto eflags = std::make_shared<EventTypeFlags>();
  auto* et = app.add_subcommand("eventtype", "manage event types")->require_subcommand(1);
  auto* ecreate = et->add_subcommand("create", "create an event type");
  ecreate->add_option("name", *name, "event type name")->required();
  ecreate->add_option("--type,-t", eflags->type, "the CloudEvents type")->required();
  ecreate->add_option("--source", eflags->source, "the CloudEvents source (a URI)");
  ecreate->add_option("--broker,-b", eflags->broker, "the broker that carries it");
  ecreate->add_option("--description", eflags->description, "what it means");
  ecreate->add_option("--schema", eflags->schema, "where its data's schema is (a URI)");
  ecreate->callback([&s, name, eflags] {
    s.run = [&s, name, eflags](const ApiClient& api) {
      return eventtype_create(api, s.g, *name, *eflags);
    };
  });
  et->add_subcommand("list", "list event types")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return eventtype_list(api, s.g); };
  });
  auto* edescribe = et->add_subcommand("describe", "show an event type");
  edescribe->add_option("name", *name, "event type name")->required();
  edescribe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return eventtype_describe(api, s.g, *name); };
  });
  auto* edelete = et->add_subcommand("delete", "delete an event type");
  edelete->add_option("name", *name, "event type name")->required();
  edelete->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      api.call("DELETE", eventtypes_path(s.g) + "/" + *name);
      std::cout << fmt::format("Eventtype '{}' successfully deleted in namespace '{}'.\n", *name,
                               s.g.ns);
      return 0;
    };
  });
}

}  // namespace elafros::cli
