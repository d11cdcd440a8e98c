// The EventLog of SqliteStore: the events and deliveries tables (schema 5).

#include <fmt/format.h>

#include <boost/json.hpp>

#include "sqlite_statement.hpp"
#include "sqlite_store.hpp"

namespace json = boost::json;

namespace elafros {
using sqlite::Statement;
using sqlite::Transaction;

namespace {

std::string attributes_text(const CloudEvent& e) {
  json::object o;
  for (const auto& [k, v] : e.attributes) o[k] = v;
  if (e.has_data) o["data"] = true;  // a marker: the data itself is the blob
  return json::serialize(o);
}

CloudEvent event_of(const std::string& attributes, std::string data) {
  CloudEvent e;
  boost::system::error_code ec;
  json::value v = json::parse(attributes, ec);
  if (!ec && v.is_object())
    for (const auto& kv : v.get_object()) {
      if (kv.key() == "data") {
        e.has_data = true;
        continue;
      }
      if (kv.value().is_string()) e.attributes[kv.key()] = std::string(kv.value().get_string());
    }
  e.data = std::move(data);
  return e;
}

DeliveryState state_of(const std::string& s) {
  if (s == "delivered") return DeliveryState::kDelivered;
  if (s == "deadlettering") return DeliveryState::kDeadLettering;
  if (s == "deadlettered") return DeliveryState::kDeadLettered;
  if (s == "failed") return DeliveryState::kFailed;
  return DeliveryState::kPending;
}

// Columns: event_seq, trigger_uid, trigger, state, attempts, dl_attempts, next_at, last_code,
// last_error, last_body, updated, from `first`.
Delivery delivery_of(const Statement& st, int first) {
  Delivery d;
  d.event_seq = st.integer(first);
  d.trigger_uid = st.text(first + 1);
  d.trigger = st.text(first + 2);
  d.state = state_of(st.text(first + 3));
  d.attempts = static_cast<int>(st.integer(first + 4));
  d.dead_letter_attempts = static_cast<int>(st.integer(first + 5));
  d.next_ms = st.integer(first + 6);
  d.last_code = static_cast<int>(st.integer(first + 7));
  d.last_error = st.text(first + 8);
  d.last_body = st.blob(first + 9);
  d.updated_ms = st.integer(first + 10);
  return d;
}

}  // namespace

const char* to_string(DeliveryState s) {
  switch (s) {
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDeadLettering:
      return "deadlettering";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kDeadLettered:
      return "deadlettered";
    case DeliveryState::kFailed:
      return "failed";
  }
  return "pending";
}

Result<std::vector<std::int64_t>> SqliteStore::append_events(const std::vector<NewEvent>& events) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  Statement ins(db_,
                "INSERT INTO events (namespace, broker, attributes, data, received) "
                "VALUES (?,?,?,?,?)");
  Statement del(db_, "INSERT INTO deliveries VALUES (?,?,?,'pending',0,0,?,0,'',NULL,?)");
  std::vector<std::int64_t> seqs;
  for (const auto& e : events) {
    ins.reset();
    ins.bind(1, e.namespace_).bind(2, e.broker).bind(3, attributes_text(e.event));
    if (e.event.has_data)
      ins.bind_blob(4, e.event.data);
    else
      ins.bind_null(4);
    ins.bind(5, e.received_ms);
    if (ins.step() != SQLITE_DONE) return ins.error("storing the event failed");
    std::int64_t seq = sqlite3_last_insert_rowid(db_);
    seqs.push_back(seq);
    for (const auto& t : e.deliveries) {
      del.reset();
      del.bind(1, seq)
          .bind(2, t.trigger_uid)
          .bind(3, t.trigger)
          .bind(4, e.received_ms)
          .bind(5, e.received_ms);
      if (del.step() != SQLITE_DONE) return del.error("storing the event's deliveries failed");
    }
  }
  if (auto r = tx.commit(); !r) return r.error();
  changed();
  return seqs;
}

namespace {

constexpr const char* kDueColumns =
    "SELECT e.seq, e.namespace, e.broker, e.attributes, e.data, e.received, "
    "d.event_seq, d.trigger_uid, d.trigger, d.state, d.attempts, d.dl_attempts, d.next_at, "
    "d.last_code, d.last_error, d.last_body, d.updated "
    "FROM deliveries d JOIN events e ON e.seq = d.event_seq ";

Result<std::vector<std::pair<StoredEvent, Delivery>>> due_rows(Statement& st) {
  std::vector<std::pair<StoredEvent, Delivery>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    StoredEvent e{st.integer(0), st.text(1), st.text(2), event_of(st.text(3), st.blob(4)),
                  st.integer(5)};
    out.emplace_back(std::move(e), delivery_of(st, 6));
  }
  if (rc != SQLITE_DONE) return st.error("reading the due deliveries failed");
  return out;
}

}  // namespace

Result<std::vector<std::pair<StoredEvent, Delivery>>> SqliteStore::due_deliveries(
    std::int64_t now_ms, std::size_t limit) {
  Statement st(db_, (std::string(kDueColumns) +
                     "WHERE d.state IN ('pending', 'deadlettering') AND d.next_at <= ? "
                     "ORDER BY d.next_at, d.event_seq LIMIT ?")
                        .c_str());
  st.bind(1, now_ms).bind(2, static_cast<std::int64_t>(limit));
  return due_rows(st);
}

Result<std::vector<std::pair<StoredEvent, Delivery>>> SqliteStore::due_deliveries_of(
    const std::string& trigger_uid, std::int64_t now_ms, std::size_t limit) {
  Statement st(db_, (std::string(kDueColumns) +
                     "WHERE d.trigger_uid = ? AND d.state IN ('pending', 'deadlettering') "
                     "AND d.next_at <= ? ORDER BY d.next_at, d.event_seq LIMIT ?")
                        .c_str());
  st.bind(1, trigger_uid).bind(2, now_ms).bind(3, static_cast<std::int64_t>(limit));
  return due_rows(st);
}

Result<std::int64_t> SqliteStore::next_due_ms() {
  Statement st(db_,
               "SELECT MIN(next_at) FROM deliveries WHERE state IN ('pending', 'deadlettering')");
  if (st.step() != SQLITE_ROW) return st.error("reading the next delivery time failed");
  return st.is_null(0) ? 0 : st.integer(0);
}

Result<void> SqliteStore::update_delivery(const Delivery& d) {
  Statement st(db_,
               "UPDATE deliveries SET state=?, attempts=?, dl_attempts=?, next_at=?, last_code=?, "
               "last_error=?, last_body=?, updated=? WHERE event_seq=? AND trigger_uid=?");
  st.bind(1, std::string(to_string(d.state)))
      .bind(2, std::int64_t{d.attempts})
      .bind(3, std::int64_t{d.dead_letter_attempts})
      .bind(4, d.next_ms)
      .bind(5, std::int64_t{d.last_code})
      .bind(6, d.last_error)
      .bind_blob(7, d.last_body)
      .bind(8, d.updated_ms)
      .bind(9, d.event_seq)
      .bind(10, d.trigger_uid);
  if (st.step() != SQLITE_DONE) return st.error("recording the delivery failed");
  if (d.state == DeliveryState::kDelivered && sqlite3_changes(db_) > 0) {
    // Usage: one more event delivered in the broker's namespace, in the same transaction.
    std::int64_t t_s = d.updated_ms / 1000;
    Statement use(
        db_,
        "INSERT INTO usage (window_start, namespace, service, revision, events_delivered) "
        "SELECT ?, namespace, '', '', 1 FROM events WHERE seq = ? "
        "ON CONFLICT(window_start, namespace, service, revision) DO UPDATE SET "
        "events_delivered = events_delivered + 1");
    use.bind(1, t_s - t_s % 3600).bind(2, d.event_seq);
    if (use.step() != SQLITE_DONE) return use.error("counting the delivery in usage failed");
  }
  changed();
  return {};
}

Result<void> SqliteStore::update_deliveries(const std::vector<Delivery>& deliveries) {
  Transaction tx(db_);
  if (!tx.began()) return Error::unavailable("the database is busy; retry");
  for (const auto& d : deliveries)
    if (auto r = update_delivery(d); !r) return r.error();
  return tx.commit();
}

Result<std::int64_t> SqliteStore::prune_events(std::int64_t before_ms, std::int64_t keep,
                                               std::int64_t max_bytes) {
  // Finished: no delivery of it is pending (an event that matched nothing is finished at once).
  static const char* kFinished =
      "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq"
      " AND d.state IN ('pending', 'deadlettering'))";
  const std::string by_age = fmt::format(
      "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE {} AND (e.received < ? OR "
      "e.seq <= (SELECT MAX(seq) FROM events) - ?))",
      kFinished);
  Statement st(db_, by_age.c_str());
  st.bind(1, before_ms).bind(2, keep);
  if (st.step() != SQLITE_DONE) return st.error("dropping old events failed");
  auto dropped = static_cast<std::int64_t>(sqlite3_changes(db_));
  if (max_bytes <= 0) return dropped;
  Statement size(db_,
                 "SELECT COALESCE(SUM(length(CAST(attributes AS BLOB)) + length(data)), 0) FROM "
                 "events");
  if (size.step() != SQLITE_ROW) return size.error("measuring the kept events failed");
  std::int64_t excess = size.integer(0) - max_bytes;
  if (excess <= 0) return dropped;
  // The oldest finished events until enough is freed.
  const std::string oldest_sql = fmt::format(
      "SELECT seq, length(CAST(attributes AS BLOB)) + length(data) FROM events e WHERE {} ORDER "
      "BY seq",
      kFinished);
  Statement oldest(db_, oldest_sql.c_str());
  std::int64_t cutoff = 0;
  while (excess > 0 && oldest.step() == SQLITE_ROW) {
    cutoff = oldest.integer(0);
    excess -= oldest.integer(1);
  }
  if (cutoff == 0) return dropped;
  const std::string cut_sql = fmt::format(
      "DELETE FROM events WHERE seq IN (SELECT seq FROM events e WHERE {} AND e.seq <= ?)",
      kFinished);
  Statement cut(db_, cut_sql.c_str());
  cut.bind(1, cutoff);
  if (cut.step() != SQLITE_DONE) return cut.error("dropping old events failed");
  return dropped + static_cast<std::int64_t>(sqlite3_changes(db_));
}

Result<EventLog::Backlog> SqliteStore::backlog() {
  Statement st(db_,
               "SELECT d.trigger_uid, COUNT(*), MIN(e.received) FROM deliveries d JOIN events e "
               "ON e.seq = d.event_seq WHERE d.state IN ('pending', 'deadlettering') GROUP BY "
               "d.trigger_uid");
  Backlog b;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    Backlog::Trigger t{st.integer(1), st.is_null(2) ? 0 : st.integer(2)};
    b.pending += t.pending;
    if (t.oldest_pending_ms && (!b.oldest_pending_ms || t.oldest_pending_ms < b.oldest_pending_ms))
      b.oldest_pending_ms = t.oldest_pending_ms;
    b.by_trigger.emplace(st.text(0), t);
  }
  if (rc != SQLITE_DONE) return st.error("reading the event backlog failed");
  return b;
}

Result<std::vector<std::pair<StoredEvent, std::vector<Delivery>>>> SqliteStore::recent_events(
    const std::string& ns, const std::string& broker, std::size_t limit) {
  Statement st(db_,
               "SELECT seq, namespace, broker, attributes, data, received FROM events "
               "WHERE namespace=? AND broker=? ORDER BY seq DESC LIMIT ?");
  st.bind(1, ns).bind(2, broker).bind(3, static_cast<std::int64_t>(limit));
  std::vector<std::pair<StoredEvent, std::vector<Delivery>>> out;
  int rc;
  while ((rc = st.step()) == SQLITE_ROW)
    out.push_back({StoredEvent{st.integer(0), st.text(1), st.text(2),
                               event_of(st.text(3), st.blob(4)), st.integer(5)},
                   {}});
  if (rc != SQLITE_DONE) return st.error("reading the broker's events failed");
  Statement ds(db_,
               "SELECT event_seq, trigger_uid, trigger, state, attempts, dl_attempts, next_at, "
               "last_code, last_error, last_body, updated FROM deliveries WHERE event_seq=? ORDER "
               "BY trigger");
  for (auto& [e, deliveries] : out) {
    ds.reset();
    ds.bind(1, e.seq);
    while ((rc = ds.step()) == SQLITE_ROW) deliveries.push_back(delivery_of(ds, 0));
    if (rc != SQLITE_DONE) return ds.error("reading the event's deliveries failed");
  }
  return out;
}

}  // namespace elafros
