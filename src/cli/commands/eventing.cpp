// elafros broker|trigger create|update|describe|list|delete and elafros event send, with kn's
// verbs, flags and messages (docs/architecture.md, "Events").

#include "elafros/eventing.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <random>
#include <stdexcept>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/yaml_json.hpp"
#include "elafros/cloudevent.hpp"

namespace json = boost::json;

namespace elafros::cli {
namespace {

std::string brokers_path(const Globals& g) {
  return fmt::format("/apis/eventing.knative.dev/v1/namespaces/{}/brokers", g.ns);
}
std::string triggers_path(const Globals& g) {
  return fmt::format("/apis/eventing.knative.dev/v1/namespaces/{}/triggers", g.ns);
}

struct DeliveryFlags {
  std::string dl_sink, backoff_policy, backoff_delay, timeout;
  int retry = -1;
  // Sets spec.delivery's fields that were given.
  void apply(json::object& spec) const {
    if (dl_sink.empty() && backoff_policy.empty() && backoff_delay.empty() && timeout.empty() &&
        retry < 0)
      return;
    json::value& dv = spec["delivery"];
    if (!dv.is_object()) dv = json::object{};
    json::object& d = dv.as_object();
    if (!dl_sink.empty()) d["deadLetterSink"] = sink_destination(dl_sink);
    if (retry >= 0) d["retry"] = retry;
    if (!backoff_policy.empty()) d["backoffPolicy"] = backoff_policy;
    if (!backoff_delay.empty()) d["backoffDelay"] = backoff_delay;
    if (!timeout.empty()) d["timeout"] = timeout;
  }
};

void add_delivery_flags(CLI::App* c, DeliveryFlags& f) {
  c->add_option("--dl-sink", f.dl_sink, "where events go once retries are exhausted (a sink)");
  c->add_option("--retry", f.retry, "retries after the first attempt");
  c->add_option("--backoff-policy", f.backoff_policy, "linear or exponential")
      ->check(CLI::IsMember({"linear", "exponential"}));
  c->add_option("--backoff-delay", f.backoff_delay,
                "the base wait between retries, ISO-8601 (e.g. PT0.2S)");
  c->add_option("--timeout", f.timeout, "the timeout of each attempt, ISO-8601 (e.g. PT10S)");
}

// --- broker ---------------------------------------------------------------------------------

void print_recent_failures(const ApiClient& api, const Globals& g, const std::string& name);

int broker_create(const ApiClient& api, const Globals& g, const std::string& name,
                  const DeliveryFlags& f) {
  json::object spec;
  f.apply(spec);
  json::value body = json::object{{"apiVersion", "eventing.knative.dev/v1"},
                                  {"kind", "Broker"},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", std::move(spec)}};
  json::value b = api.call("POST", brokers_path(g), &body);
  if (g.output != "table") return print(g, b), 0;
  std::cout << fmt::format("Broker '{}' successfully created in namespace '{}'.\n", name, g.ns);
  return 0;
}

int broker_update(const ApiClient& api, const Globals& g, const std::string& name,
                  const DeliveryFlags& f) {
  json::value b = api.call("GET", brokers_path(g) + "/" + name);
  json::value& spec = b.as_object()["spec"];
  if (!spec.is_object()) spec = json::object{};
  f.apply(spec.as_object());
  b.as_object().erase("status");
  json::value out = api.call("PUT", brokers_path(g) + "/" + name, &b);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Broker '{}' updated in namespace '{}'.\n", name, g.ns);
  return 0;
}

int broker_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", brokers_path(g));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) {
    std::cout << "No brokers found.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAME", "URL", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (const auto& b : items)
    rows.push_back({field(b, "metadata.name"), field(b, "status.address.url"),
                    age(field(b, "metadata.creationTimestamp")), condition_summary(b),
                    condition_status(b, "Ready"), ready_reason(b)});
  std::cout << table(rows);
  return 0;
}

int broker_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value b = api.call("GET", brokers_path(g) + "/" + name);
  if (g.output == "url") return std::cout << field(b, "status.address.url") << "\n", 0;
  if (g.output != "table") return print(g, b), 0;
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nAge:          {}\nAddress:\n  URL:        {}\n", name,
      g.ns, age(field(b, "metadata.creationTimestamp")), field(b, "status.address.url"));
  if (const auto* d = b.at("spec").as_object().if_contains("delivery")) {
    std::cout << "Delivery:\n";
    if (!field(*d, "retry").empty()) std::cout << "  Retry:      " << field(*d, "retry") << "\n";
    if (!field(*d, "backoffPolicy").empty())
      std::cout << "  Backoff:    " << field(*d, "backoffPolicy") << " "
                << field(*d, "backoffDelay") << "\n";
    if (const auto* dls = d->as_object().if_contains("deadLetterSink"))
      std::cout << "  Dead letter: " << destination_text(*dls) << "\n";
  }
  print_conditions(b);
  print_recent_failures(api, g, name);
  return 0;
}

std::string events_path(const Globals& g, const std::string& broker, int limit) {
  return fmt::format("/apis/elafros.dev/v1/namespaces/{}/brokers/{}/events?limit={}", g.ns, broker,
                     limit);
}

int broker_events(const ApiClient& api, const Globals& g, const std::string& name, int limit) {
  json::value list = api.call("GET", events_path(g, name, limit));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) {
    std::cout << fmt::format("No events kept for broker '{}'.\n", name);
    return 0;
  }
  std::vector<std::vector<std::string>> rows{{"ID", "TYPE", "SOURCE", "AGE", "DELIVERIES"}};
  for (auto it = items.rbegin(); it != items.rend(); ++it) {
    std::string deliveries;
    for (const auto& d : array_at(*it, {"deliveries"}))
      deliveries += fmt::format("{}{}:{}({})", deliveries.empty() ? "" : " ", field(d, "trigger"),
                                field(d, "state"), field(d, "attempts"));
    rows.push_back({field(*it, "attributes.id"), field(*it, "attributes.type"),
                    field(*it, "attributes.source"), age(field(*it, "received")),
                    deliveries.empty() ? "(no trigger matched)" : deliveries});
  }
  std::cout << table(rows);
  return 0;
}

// What went wrong lately: deliveries retried, dead-lettered or dropped, with their last error.
void print_recent_failures(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value list = api.call("GET", events_path(g, name, 200));
  std::vector<std::vector<std::string>> rows{
      {"  EVENT", "TRIGGER", "STATE", "ATTEMPTS", "LAST ERROR"}};
  for (const auto& e : array_at(list, {"items"}))
    for (const auto& d : array_at(e, {"deliveries"})) {
      if (field(d, "state") == "delivered" || field(d, "lastError").empty()) continue;
      if (rows.size() > 10) break;
      rows.push_back({"  " + field(e, "attributes.id"), field(d, "trigger"), field(d, "state"),
                      field(d, "attempts"), field(d, "lastError").substr(0, 120)});
    }
  if (rows.size() == 1) return;
  std::cout << "\nRecent failures and dead letters:\n" << table(rows);
}

// --- trigger --------------------------------------------------------------------------------

struct TriggerFlags {
  std::string broker, broker_namespace, sink, filters_file;
  std::vector<std::string> filters;
  DeliveryFlags delivery;
};

void apply_trigger_flags(json::object& spec, const TriggerFlags& f) {
  if (!f.sink.empty()) spec["subscriber"] = sink_destination(f.sink);
  if (!f.filters.empty()) {
    json::value& fv = spec["filter"];
    if (!fv.is_object()) fv = json::object{};
    json::value& av = fv.as_object()["attributes"];
    if (!av.is_object()) av = json::object{};
    for (const auto& item : f.filters) {
      if (item.size() > 1 && item.back() == '-' && item.find('=') == std::string::npos) {
        av.as_object().erase(item.substr(0, item.size() - 1));
        continue;
      }
      auto [k, v] = split_assignment(item + (item.back() == '=' ? "\x01" : ""), "--filter");
      av.as_object()[k] = v == "\x01" ? "" : v;
    }
  }
  if (!f.filters_file.empty()) {
    auto docs = yaml_documents(read_input(f.filters_file));
    json::value doc = docs.empty() ? json::value() : docs[0];
    if (doc.is_object() && doc.as_object().contains("filters")) doc = doc.at("filters");
    if (!doc.is_array())
      throw std::runtime_error(fmt::format(
          "--filters-file {}: expected a list of filters (or an object with a filters list)",
          f.filters_file));
    spec["filters"] = std::move(doc);
  }
  f.delivery.apply(spec);
}

int trigger_create(const ApiClient& api, const Globals& g, const std::string& name,
                   const TriggerFlags& f) {
  if (f.sink.empty()) throw std::runtime_error("trigger create needs --sink (e.g. ksvc:hello)");
  std::string broker = f.broker.empty() ? "default" : f.broker;
  json::object spec;
  if (!f.broker_namespace.empty() && f.broker_namespace != g.ns)
    spec["brokerRef"] = json::object{{"apiVersion", "eventing.knative.dev/v1"},
                                     {"kind", "Broker"},
                                     {"name", broker},
                                     {"namespace", f.broker_namespace}};
  else
    spec["broker"] = broker;
  apply_trigger_flags(spec, f);
  json::value body = json::object{{"apiVersion", "eventing.knative.dev/v1"},
                                  {"kind", "Trigger"},
                                  {"metadata", json::object{{"name", name}, {"namespace", g.ns}}},
                                  {"spec", std::move(spec)}};
  json::value t = api.call("POST", triggers_path(g), &body);
  if (g.output != "table") return print(g, t), 0;
  std::cout << fmt::format("Trigger '{}' successfully created in namespace '{}'.\n", name, g.ns);
  return 0;
}

int trigger_update(const ApiClient& api, const Globals& g, const std::string& name,
                   const TriggerFlags& f) {
  json::value t = api.call("GET", triggers_path(g) + "/" + name);
  apply_trigger_flags(t.as_object()["spec"].as_object(), f);
  if (!f.broker.empty() && f.broker != field(t, "spec.broker"))
    throw std::runtime_error(
        "a trigger's broker cannot change (Knative's rule): delete the trigger and create it "
        "again");
  t.as_object().erase("status");
  json::value out = api.call("PUT", triggers_path(g) + "/" + name, &t);
  if (g.output != "table") return print(g, out), 0;
  std::cout << fmt::format("Trigger '{}' updated in namespace '{}'.\n", name, g.ns);
  return 0;
}

int trigger_list(const ApiClient& api, const Globals& g) {
  json::value list = api.call("GET", triggers_path(g));
  if (g.output != "table") return print(g, list), 0;
  auto items = array_at(list, {"items"});
  if (items.empty()) {
    std::cout << "No triggers found.\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows{
      {"NAME", "BROKER", "SINK", "AGE", "CONDITIONS", "READY", "REASON"}};
  for (const auto& t : items)
    rows.push_back({field(t, "metadata.name"), field(t, "spec.broker"),
                    destination_text(t.at("spec").at("subscriber")),
                    age(field(t, "metadata.creationTimestamp")), condition_summary(t),
                    condition_status(t, "Ready"), ready_reason(t)});
  std::cout << table(rows);
  return 0;
}

int trigger_describe(const ApiClient& api, const Globals& g, const std::string& name) {
  json::value t = api.call("GET", triggers_path(g) + "/" + name);
  if (g.output != "table") return print(g, t), 0;
  std::string broker = field(t, "spec.broker");
  if (broker.empty() && !field(t, "spec.brokerRef.name").empty())
    broker = field(t, "spec.brokerRef.namespace") + "/" + field(t, "spec.brokerRef.name");
  std::cout << fmt::format(
      "Name:         {}\nNamespace:    {}\nBroker:       {}\nAge:          {}\nSink:         {}\n"
      "Subscriber:   {}\n",
      name, g.ns, broker, age(field(t, "metadata.creationTimestamp")),
      destination_text(t.at("spec").at("subscriber")), field(t, "status.subscriberUri"));
  if (const auto* f = t.at("spec").as_object().if_contains("filter"); f && f->is_object())
    if (const auto* a = f->as_object().if_contains("attributes"); a && a->is_object())
      for (const auto& kv : a->as_object())
        std::cout << fmt::format(
            "Filter:       {}={}\n", std::string_view(kv.key()),
            kv.value().is_string() ? std::string(kv.value().get_string()) : "");
  if (const auto* fs = t.at("spec").as_object().if_contains("filters"); fs && fs->is_array())
    for (const auto& f : fs->as_array())
      std::cout << "Filters:      " << json::serialize(f) << "\n";
  print_conditions(t);
  return 0;
}

// --- event send -----------------------------------------------------------------------------

struct SendFlags {
  std::string broker = "default", type, source, id, data, mode = "binary", content_type;
  std::vector<std::string> extensions;
};

std::string random_id() {
  static std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

int event_send(const ApiClient& api, const Globals& g, const SendFlags& f) {
  json::value b = api.call("GET", brokers_path(g) + "/" + f.broker);
  std::string url = field(b, "status.address.url");
  if (url.empty())
    throw std::runtime_error(
        fmt::format("broker '{}' has no address yet; 'elafros broker describe {}' says why",
                    f.broker, f.broker));
  CloudEvent e;
  e.attributes = {{"id", f.id.empty() ? random_id() : f.id},
                  {"source", f.source},
                  {"specversion", "1.0"},
                  {"type", f.type}};
  for (const auto& x : f.extensions) {
    auto [k, v] = split_assignment(x, "--extension");
    e.attributes[k] = v;
  }
  if (!f.data.empty()) {
    e.data = f.data;
    e.has_data = true;
    e.attributes["datacontenttype"] = f.content_type.empty() ? "application/json" : f.content_type;
  }
  if (auto valid = validate_cloudevent(e); !valid) throw std::runtime_error(valid.error().message);
  HttpHeaders headers;
  std::string body;
  if (f.mode == "structured") {
    headers.emplace_back("content-type", "application/cloudevents+json; charset=utf-8");
    body = cloudevent_to_json(e);
  } else {
    headers = cloudevent_binary_headers(e);
    body = e.data;
  }
  auto answer = post_url(url, headers, body);
  if (answer.status != 202 && answer.status != 200)
    throw std::runtime_error(fmt::format("the broker answered {}: {}", answer.status, answer.body));
  if (g.output != "table") return print(g, json::parse(cloudevent_to_json(e))), 0;
  std::cout << fmt::format("Event '{}' sent to broker '{}' in namespace '{}'.\n", e.get("id"),
                           f.broker, g.ns);
  return 0;
}

}  // namespace

// kn's sink syntax: ksvc:NAME[:NAMESPACE], broker:NAME, a bare NAME (a service), or a URL.
json::object sink_destination(const std::string& sink) {
  if (sink.rfind("http://", 0) == 0 || sink.rfind("https://", 0) == 0)
    return json::object{{"uri", sink}};
  std::string kind = "ksvc", rest = sink;
  if (auto colon = sink.find(':'); colon != std::string::npos) {
    kind = sink.substr(0, colon);
    rest = sink.substr(colon + 1);
  }
  std::string name = rest, ns;
  if (auto colon = rest.find(':'); colon != std::string::npos) {
    name = rest.substr(0, colon);
    ns = rest.substr(colon + 1);
  }
  json::object ref;
  if (kind == "ksvc")
    ref = {{"apiVersion", "serving.knative.dev/v1"}, {"kind", "Service"}, {"name", name}};
  else if (kind == "broker")
    ref = {{"apiVersion", "eventing.knative.dev/v1"}, {"kind", "Broker"}, {"name", name}};
  else
    throw std::runtime_error(fmt::format(
        "--sink \"{}\": use ksvc:NAME[:NAMESPACE], broker:NAME, a service NAME, or an http:// URL",
        sink));
  if (name.empty()) throw std::runtime_error(fmt::format("--sink \"{}\" names nothing", sink));
  if (!ns.empty()) ref["namespace"] = ns;
  return json::object{{"ref", std::move(ref)}};
}

std::string destination_text(const json::value& d) {
  if (!d.is_object()) return "";
  std::string uri = field(d, "uri");
  if (const auto* ref = d.as_object().if_contains("ref"); ref && ref->is_object()) {
    std::string kind = field(*ref, "kind") == "Service" ? "ksvc" : "broker";
    return fmt::format("{}:{}{}", kind, field(*ref, "name"), uri.empty() ? "" : " " + uri);
  }
  return uri;
}

std::string ready_reason(const json::value& o) {
  const json::object* ready = condition(o, "Ready");
  return ready ? field(*ready, "reason") : "";
}

void add_eventing_commands(CLI::App& app, Session& s) {
  auto name = std::make_shared<std::string>();
  auto* broker = app.add_subcommand("broker", "manage brokers (events)")->require_subcommand(1);
  auto bflags = std::make_shared<DeliveryFlags>();
  auto* bcreate = broker->add_subcommand("create", "create a broker");
  bcreate->add_option("name", *name, "broker name")->required();
  add_delivery_flags(bcreate, *bflags);
  bcreate->callback([&s, name, bflags] {
    s.run = [&s, name, bflags](const ApiClient& api) {
      return broker_create(api, s.g, *name, *bflags);
    };
  });
  auto* bupdate = broker->add_subcommand("update", "change a broker's delivery");
  bupdate->add_option("name", *name, "broker name")->required();
  add_delivery_flags(bupdate, *bflags);
  bupdate->callback([&s, name, bflags] {
    s.run = [&s, name, bflags](const ApiClient& api) {
      return broker_update(api, s.g, *name, *bflags);
    };
  });
  broker->add_subcommand("list", "list brokers")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return broker_list(api, s.g); };
  });
  auto* bdescribe = broker->add_subcommand("describe", "show a broker (-o url: its address)");
  bdescribe->add_option("name", *name, "broker name")->required();
  bdescribe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return broker_describe(api, s.g, *name); };
  });
  auto limit = std::make_shared<int>(50);
  auto* bevents = broker->add_subcommand("events", "a broker's latest events and their deliveries");
  bevents->add_option("name", *name, "broker name")->required();
  bevents->add_option("--limit", *limit, "how many of the latest (default 50)");
  bevents->callback([&s, name, limit] {
    s.run = [&s, name, limit](const ApiClient& api) {
      return broker_events(api, s.g, *name, *limit);
    };
  });
  auto* bdelete = broker->add_subcommand("delete", "delete a broker");
  bdelete->add_option("name", *name, "broker name")->required();
  bdelete->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      api.call("DELETE", brokers_path(s.g) + "/" + *name);
      std::cout << fmt::format("Broker '{}' successfully deleted in namespace '{}'.\n", *name,
                               s.g.ns);
      return 0;
    };
  });

  auto* trigger = app.add_subcommand("trigger", "manage triggers (events)")->require_subcommand(1);
  auto tflags = std::make_shared<TriggerFlags>();
  auto add_trigger_flags = [tflags](CLI::App* c) {
    c->add_option("--broker", tflags->broker, "the broker (default: default)");
    c->add_option("--sink,-s", tflags->sink,
                  "where events go: ksvc:NAME[:NAMESPACE], broker:NAME, NAME, or a URL");
    c->add_option("--filter", tflags->filters,
                  "KEY=VALUE: only events whose attribute KEY is VALUE (KEY= : any value; KEY- "
                  "removes it)");
    c->add_option("--filters-file", tflags->filters_file,
                  "YAML or JSON list of filters (exact, prefix, suffix, all, any, not, cesql)");
    add_delivery_flags(c, tflags->delivery);
  };
  auto* tcreate = trigger->add_subcommand("create", "create a trigger");
  tcreate->add_option("name", *name, "trigger name")->required();
  add_trigger_flags(tcreate);
  tcreate->add_option("--broker-namespace", tflags->broker_namespace,
                      "the broker's namespace, when it is another (needs triggers/bind there)");
  tcreate->callback([&s, name, tflags] {
    s.run = [&s, name, tflags](const ApiClient& api) {
      return trigger_create(api, s.g, *name, *tflags);
    };
  });
  auto* tupdate = trigger->add_subcommand("update", "change a trigger's filter, sink or delivery");
  tupdate->add_option("name", *name, "trigger name")->required();
  add_trigger_flags(tupdate);
  tupdate->callback([&s, name, tflags] {
    s.run = [&s, name, tflags](const ApiClient& api) {
      return trigger_update(api, s.g, *name, *tflags);
    };
  });
  trigger->add_subcommand("list", "list triggers")->callback([&s] {
    s.run = [&s](const ApiClient& api) { return trigger_list(api, s.g); };
  });
  auto* tdescribe = trigger->add_subcommand("describe", "show a trigger");
  tdescribe->add_option("name", *name, "trigger name")->required();
  tdescribe->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) { return trigger_describe(api, s.g, *name); };
  });
  auto* tdelete = trigger->add_subcommand("delete", "delete a trigger");
  tdelete->add_option("name", *name, "trigger name")->required();
  tdelete->callback([&s, name] {
    s.run = [&s, name](const ApiClient& api) {
      api.call("DELETE", triggers_path(s.g) + "/" + *name);
      std::cout << fmt::format("Trigger '{}' deleted in namespace '{}'.\n", *name, s.g.ns);
      return 0;
    };
  });

  auto* event = app.add_subcommand("event", "publish events")->require_subcommand(1);
  auto sflags = std::make_shared<SendFlags>();
  auto* send = event->add_subcommand("send", "send a CloudEvent to a broker");
  send->add_option("--broker,-b", sflags->broker, "the broker (default: default)");
  send->add_option("--type,-t", sflags->type, "the event's type")->required();
  send->add_option("--source", sflags->source, "the event's source")->required();
  send->add_option("--id", sflags->id, "the event's id (default: a random one)");
  send->add_option("--data,-d", sflags->data, "the event's data (JSON by default)");
  send->add_option("--content-type", sflags->content_type,
                   "the data's type (default application/json)");
  send->add_option("--extension,-e", sflags->extensions, "KEY=VALUE: an extension attribute");
  send->add_option("--mode", sflags->mode, "binary or structured")
      ->check(CLI::IsMember({"binary", "structured"}));
  send->callback([&s, sflags] {
    s.run = [&s, sflags](const ApiClient& api) { return event_send(api, s.g, *sflags); };
  });
}

}  // namespace elafros::cli
