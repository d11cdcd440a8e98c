// CloudEvents SQL 1.0: a tokenizer, a precedence-climbing parser, and a tree evaluator over one
// event. Values are String, Integer (32-bit) or Boolean; casts follow the spec's rules (section
// 3.7). Any evaluation error makes the whole expression false (see event_filter.hpp).

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdint>
#include <optional>
#include <variant>

#include "elafros/event_filter.hpp"

namespace elafros {

namespace {

enum class Type { kString, kInteger, kBoolean };

struct Value {
  Type type = Type::kBoolean;
  std::string s;
  std::int64_t i = 0;
  bool b = false;
  static Value str(std::string v) { return {Type::kString, std::move(v), 0, false}; }
  static Value integer(std::int64_t v) { return {Type::kInteger, {}, v, false}; }
  static Value boolean(bool v) { return {Type::kBoolean, {}, 0, v}; }
};

struct EvalError {};  // a missing attribute, a failed cast, a division by zero

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::int64_t> to_int(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::size_t i = 0;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    i = 1;
  }
  if (i == s.size()) return std::nullopt;
  std::int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
    v = v * 10 + (s[i] - '0');
    if (v > static_cast<std::int64_t>(INT32_MAX) + 1) return std::nullopt;
  }
  v = neg ? -v : v;
  if (v > INT32_MAX || v < INT32_MIN) return std::nullopt;
  return v;
}

Value cast(const Value& v, Type to) {
  if (v.type == to) return v;
  switch (to) {
    case Type::kString:
      return Value::str(v.type == Type::kInteger ? std::to_string(v.i) : (v.b ? "true" : "false"));
    case Type::kInteger:
      if (v.type == Type::kString)
        if (auto n = to_int(v.s)) return Value::integer(*n);
      throw EvalError{};
    case Type::kBoolean:
      if (v.type == Type::kString) {
        std::string u = upper(v.s);
        if (u == "TRUE") return Value::boolean(true);
        if (u == "FALSE") return Value::boolean(false);
      }
      throw EvalError{};
  }
  throw EvalError{};
}

std::int64_t wrap32(std::int64_t v) {
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(v & 0xffffffff));
}

// LIKE: % is any run, _ one character, \ escapes either.
bool like(std::string_view s, std::string_view p) {
  std::size_t si = 0, pi = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '\\' && pi + 1 < p.size() && s[si] == p[pi + 1]) {
      si++, pi += 2;
    } else if (pi < p.size() && p[pi] == '_') {
      si++, pi++;
    } else if (pi < p.size() && p[pi] == '%') {
      star_p = pi++;
      star_s = si;
    } else if (pi < p.size() && p[pi] != '\\' && p[pi] == s[si]) {
      si++, pi++;
    } else if (star_p != std::string_view::npos) {
      pi = star_p + 1;
      si = ++star_s;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '%') ++pi;
  return pi == p.size();
}

// --- tokens ---------------------------------------------------------------------------------

struct Token {
  enum Kind { kEnd, kIdent, kString, kInteger, kSymbol } kind = kEnd;
  std::string text;  // identifiers uppercased in `word`, kept as written in `text`
  std::string word;
  std::size_t pos = 0;  // 1-based column
};

Result<std::vector<Token>> tokenize(std::string_view in) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    Token t;
    t.pos = i + 1;
    if (std::isalpha(static_cast<unsigned char>(c)) ||
        std::isdigit(static_cast<unsigned char>(c)) || c == '_') {
      std::size_t j = i;
      while (j < in.size() && (std::isalnum(static_cast<unsigned char>(in[j])) || in[j] == '_'))
        ++j;
      t.text = std::string(in.substr(i, j - i));
      bool digits = std::all_of(t.text.begin(), t.text.end(), [](char ch) {
        return std::isdigit(static_cast<unsigned char>(ch));
      });
      t.kind = digits ? Token::kInteger : Token::kIdent;
      t.word = upper(t.text);
      i = j;
    } else if (c == '\'' || c == '"') {
      std::size_t j = i + 1;
      std::string s;
      bool closed = false;
      while (j < in.size()) {
        if (in[j] == '\\' && j + 1 < in.size() && (in[j + 1] == c || in[j + 1] == '\\')) {
          s += in[j + 1];
          j += 2;
        } else if (in[j] == c) {
          closed = true;
          ++j;
          break;
        } else {
          s += in[j++];
        }
      }
      if (!closed)
        return Error::invalid(
            fmt::format("at {}: the string that starts here is not closed", i + 1));
      t.kind = Token::kString;
      t.text = std::move(s);
      i = j;
    } else {
      static constexpr std::string_view kTwo[] = {"!=", "<>", "<=", ">="};
      std::string_view two = in.substr(i, 2);
      bool matched = false;
      for (auto op : kTwo)
        if (two == op) {
          t.text = std::string(op);
          i += 2;
          matched = true;
        }
      if (!matched) {
        if (std::string_view("=<>+-*/%(),").find(c) == std::string_view::npos)
          return Error::invalid(fmt::format("at {}: unexpected character '{}'", i + 1, c));
        t.text = std::string(1, c);
        ++i;
      }
      t.kind = Token::kSymbol;
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.pos = in.size() + 1;
  out.push_back(end);
  return out;
}

}  // namespace

// --- the tree -------------------------------------------------------------------------------

struct CesqlExpression {
  enum class Op {
    kLiteral,
    kAttribute,
    kExists,
    kNot,
    kNegate,
    kBinary,
    kLike,
    kIn,
    kCall
  } op = Op::kLiteral;
  Value literal;
  std::string name;      // attribute, function, or the binary operator
  bool negated = false;  // NOT LIKE, NOT IN
  std::vector<std::unique_ptr<CesqlExpression>> args;
};

namespace {

using Node = std::unique_ptr<CesqlExpression>;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Result<Node> parse() {
    Node n = expression(0);
    if (!error_ && peek().kind != Token::kEnd) fail(peek(), "expected an operator or the end");
    if (error_) return *error_;
    return n;
  }

 private:
  // Binary operators by precedence, lowest first (the reference grammar's order).
  static int precedence(const Token& t) {
    if (t.kind == Token::kIdent && (t.word == "AND" || t.word == "OR" || t.word == "XOR")) return 1;
    if (t.kind == Token::kSymbol) {
      const std::string& s = t.text;
      if (s == "<" || s == "<=" || s == ">" || s == ">=") return 3;
      if (s == "=" || s == "!=" || s == "<>") return 2;
      if (s == "+" || s == "-") return 4;
      if (s == "*" || s == "/" || s == "%") return 5;
    }
    return 0;
  }

  Node expression(int min) {
    Node left = postfix();
    for (;;) {
      if (error_) return nullptr;
      const Token& t = peek();
      int p = precedence(t);
      if (p == 0 || p < min) break;
      Token op = next();
      Node right = expression(p + 1);
      auto n = std::make_unique<CesqlExpression>();
      n->op = CesqlExpression::Op::kBinary;
      n->name = op.kind == Token::kIdent ? op.word : op.text;
      n->args.push_back(std::move(left));
      n->args.push_back(std::move(right));
      left = std::move(n);
    }
    return left;
  }

  // A unary expression with what may follow it: [NOT] LIKE 'pattern', [NOT] IN (…).
  Node postfix() {
    Node n = unary();
    for (;;) {
      if (error_) return nullptr;
      bool negated = false;
      std::size_t save = i_;
      if (peek().kind == Token::kIdent && peek().word == "NOT") {
        next();
        negated = true;
      }
      const Token& t = peek();
      if (t.kind == Token::kIdent && t.word == "LIKE") {
        next();
        if (peek().kind != Token::kString) return fail(peek(), "LIKE takes a string pattern");
        auto like = std::make_unique<CesqlExpression>();
        like->op = CesqlExpression::Op::kLike;
        like->negated = negated;
        like->literal = Value::str(next().text);
        like->args.push_back(std::move(n));
        n = std::move(like);
      } else if (t.kind == Token::kIdent && t.word == "IN") {
        next();
        if (!expect("(")) return nullptr;
        auto in = std::make_unique<CesqlExpression>();
        in->op = CesqlExpression::Op::kIn;
        in->negated = negated;
        in->args.push_back(std::move(n));
        do {
          in->args.push_back(expression(0));
        } while (!error_ && accept(","));
        if (!expect(")")) return nullptr;
        n = std::move(in);
      } else {
        if (negated) i_ = save;
        return n;
      }
    }
  }

  Node unary() {
    const Token& t = peek();
    if (t.kind == Token::kIdent && t.word == "NOT") {
      next();
      auto n = std::make_unique<CesqlExpression>();
      n->op = CesqlExpression::Op::kNot;
      n->args.push_back(postfix());
      return n;
    }
    if (t.kind == Token::kSymbol && t.text == "-") {
      next();
      if (peek().kind == Token::kInteger) return integer(next(), true);
      auto n = std::make_unique<CesqlExpression>();
      n->op = CesqlExpression::Op::kNegate;
      n->args.push_back(unary());
      return n;
    }
    if (t.kind == Token::kSymbol && t.text == "+") {
      next();
      if (peek().kind != Token::kInteger) return fail(peek(), "expected an integer after '+'");
      return integer(next(), false);
    }
    return primary();
  }

  Node integer(const Token& t, bool negative) {
    auto v = to_int((negative ? "-" : "") + t.text);
    if (!v) return fail(t, "the integer is outside the 32-bit range");
    auto n = std::make_unique<CesqlExpression>();
    n->literal = Value::integer(*v);
    return n;
  }

  Node primary() {
    Token t = next();
    auto n = std::make_unique<CesqlExpression>();
    switch (t.kind) {
      case Token::kEnd:
        return fail(t, "the expression ends too soon");
      case Token::kString:
        n->literal = Value::str(t.text);
        return n;
      case Token::kInteger:
        return integer(t, false);
      case Token::kSymbol:
        if (t.text == "(") {
          Node inner = expression(0);
          if (!expect(")")) return nullptr;
          return inner;
        }
        return fail(t, fmt::format("unexpected '{}'", t.text));
      case Token::kIdent:
        break;
    }
    if (t.word == "TRUE" || t.word == "FALSE") {
      n->literal = Value::boolean(t.word == "TRUE");
      return n;
    }
    if (t.word == "EXISTS") {
      Token name = next();
      if (name.kind != Token::kIdent || !valid_attribute_name(name.text))
        return fail(name, "EXISTS takes an attribute name");
      n->op = CesqlExpression::Op::kExists;
      n->name = name.text;
      return n;
    }
    if (peek().kind == Token::kSymbol && peek().text == "(") {  // a function call
      next();
      n->op = CesqlExpression::Op::kCall;
      n->name = t.word;
      if (!accept(")")) {
        do {
          n->args.push_back(expression(0));
        } while (!error_ && accept(","));
        if (!expect(")")) return nullptr;
      }
      if (auto problem = arity_problem(n->name, n->args.size())) return fail(t, *problem);
      return n;
    }
    if (!valid_attribute_name(t.text))
      return fail(
          t, fmt::format("\"{}\" is not an attribute name (lowercase letters and digits)", t.text));
    n->op = CesqlExpression::Op::kAttribute;
    n->name = t.text;
    return n;
  }

  static std::optional<std::string> arity_problem(const std::string& f, std::size_t n) {
    struct Sig {
      const char* name;
      std::size_t min, max;
    };
    static constexpr Sig kSigs[] = {
        {"LENGTH", 1, 1}, {"CONCAT", 0, SIZE_MAX}, {"CONCAT_WS", 1, SIZE_MAX},
        {"LOWER", 1, 1},  {"UPPER", 1, 1},         {"TRIM", 1, 1},
        {"LEFT", 2, 2},   {"RIGHT", 2, 2},         {"SUBSTRING", 2, 3},
        {"ABS", 1, 1},    {"INT", 1, 1},           {"BOOL", 1, 1},
        {"STRING", 1, 1}, {"IS_INT", 1, 1},        {"IS_BOOL", 1, 1}};
    for (const auto& s : kSigs)
      if (f == s.name) {
        if (n < s.min || n > s.max)
          return fmt::format("{} takes {} argument(s), not {}", f,
                             s.min == s.max      ? std::to_string(s.min)
                             : s.max == SIZE_MAX ? fmt::format("at least {}", s.min)
                                                 : fmt::format("{} or {}", s.min, s.max),
                             n);
        return std::nullopt;
      }
    return fmt::format(
        "there is no function {} (CESQL has LENGTH, CONCAT, CONCAT_WS, LOWER, "
        "UPPER, TRIM, LEFT, RIGHT, SUBSTRING, ABS, INT, BOOL, STRING, IS_INT, "
        "IS_BOOL)",
        f);
  }

  const Token& peek() const { return t_[std::min(i_, t_.size() - 1)]; }
  Token next() { return t_[std::min(i_++, t_.size() - 1)]; }
  bool accept(const char* symbol) {
    if (peek().kind == Token::kSymbol && peek().text == symbol) {
      next();
      return true;
    }
    return false;
  }
  bool expect(const char* symbol) {
    if (accept(symbol)) return true;
    fail(peek(), fmt::format("expected '{}'", symbol));
    return false;
  }
  Node fail(const Token& t, const std::string& what) {
    if (!error_) error_ = Error::invalid(fmt::format("at {}: {}", t.pos, what));
    return nullptr;
  }

  std::vector<Token> t_;
  std::size_t i_ = 0;
  std::optional<Error> error_;
};

// --- evaluation -----------------------------------------------------------------------------

Value eval(const CesqlExpression& n, const CloudEvent& e);

Value eval_as(const CesqlExpression& n, const CloudEvent& e, Type t) {
  return cast(eval(n, e), t);
}

Value call(const CesqlExpression& n, const CloudEvent& e) {
  const std::string& f = n.name;
  auto s = [&](std::size_t k) { return eval_as(*n.args[k], e, Type::kString).s; };
  auto i = [&](std::size_t k) { return eval_as(*n.args[k], e, Type::kInteger).i; };
  if (f == "LENGTH") return Value::integer(static_cast<std::int64_t>(s(0).size()));
  if (f == "CONCAT") {
    std::string out;
    for (std::size_t k = 0; k < n.args.size(); ++k) out += s(k);
    return Value::str(out);
  }
  if (f == "CONCAT_WS") {
    std::string sep = s(0), out;
    for (std::size_t k = 1; k < n.args.size(); ++k) out += (k > 1 ? sep : "") + s(k);
    return Value::str(out);
  }
  if (f == "LOWER" || f == "UPPER") {
    std::string v = s(0);
    for (char& c : v)
      c = static_cast<char>(f == "LOWER" ? std::tolower(static_cast<unsigned char>(c))
                                         : std::toupper(static_cast<unsigned char>(c)));
    return Value::str(v);
  }
  if (f == "TRIM") {
    std::string v = s(0);
    auto b = v.find_first_not_of(" \t\r\n");
    auto en = v.find_last_not_of(" \t\r\n");
    return Value::str(b == std::string::npos ? "" : v.substr(b, en - b + 1));
  }
  if (f == "LEFT" || f == "RIGHT") {
    std::string v = s(0);
    std::int64_t y = i(1);
    if (y < 0) throw EvalError{};
    if (static_cast<std::size_t>(y) >= v.size()) return Value::str(v);
    return Value::str(f == "LEFT" ? v.substr(0, static_cast<std::size_t>(y))
                                  : v.substr(v.size() - static_cast<std::size_t>(y)));
  }
  if (f == "SUBSTRING") {
    std::string v = s(0);
    std::int64_t pos = i(1), len = v.size();
    auto size = static_cast<std::int64_t>(v.size());
    if (pos == 0) return Value::str("");
    if (pos > size || pos < -size) throw EvalError{};
    std::int64_t start = pos > 0 ? pos - 1 : size + pos;
    if (n.args.size() == 3) {
      len = i(2);
      if (len < 0) throw EvalError{};
    }
    return Value::str(v.substr(static_cast<std::size_t>(start), static_cast<std::size_t>(len)));
  }
  if (f == "ABS") {
    std::int64_t v = i(0);
    if (v == INT32_MIN) throw EvalError{};
    return Value::integer(v < 0 ? -v : v);
  }
  if (f == "INT") return eval_as(*n.args[0], e, Type::kInteger);
  if (f == "BOOL") return eval_as(*n.args[0], e, Type::kBoolean);
  if (f == "STRING") return eval_as(*n.args[0], e, Type::kString);
  if (f == "IS_INT" || f == "IS_BOOL") {
    Value v = eval(*n.args[0], e);
    Type want = f == "IS_INT" ? Type::kInteger : Type::kBoolean;
    try {
      cast(v, want);
      return Value::boolean(true);
    } catch (const EvalError&) {
      return Value::boolean(false);
    }
  }
  throw EvalError{};
}

Value binary(const CesqlExpression& n, const CloudEvent& e) {
  const std::string& op = n.name;
  if (op == "AND" || op == "OR" || op == "XOR") {
    bool l = eval_as(*n.args[0], e, Type::kBoolean).b;
    if (op == "AND" && !l) return Value::boolean(false);  // short-circuit
    if (op == "OR" && l) return Value::boolean(true);
    bool r = eval_as(*n.args[1], e, Type::kBoolean).b;
    return Value::boolean(op == "XOR" ? l != r : r);
  }
  if (op == "=" || op == "!=" || op == "<>") {
    // Ambiguous: the right operand's type decides (section 3.7).
    Value r = eval(*n.args[1], e);
    Value l = cast(eval(*n.args[0], e), r.type);
    bool eq = r.type == Type::kString    ? l.s == r.s
              : r.type == Type::kInteger ? l.i == r.i
                                         : l.b == r.b;
    return Value::boolean(op == "=" ? eq : !eq);
  }
  std::int64_t l = eval_as(*n.args[0], e, Type::kInteger).i;
  std::int64_t r = eval_as(*n.args[1], e, Type::kInteger).i;
  if (op == "<") return Value::boolean(l < r);
  if (op == "<=") return Value::boolean(l <= r);
  if (op == ">") return Value::boolean(l > r);
  if (op == ">=") return Value::boolean(l >= r);
  if (op == "+") return Value::integer(wrap32(l + r));
  if (op == "-") return Value::integer(wrap32(l - r));
  if (op == "*") return Value::integer(wrap32(l * r));
  if (r == 0) throw EvalError{};
  if (op == "/") return Value::integer(wrap32(l / r));  // truncated, as C++ does
  return Value::integer(l % r);
}

Value eval(const CesqlExpression& n, const CloudEvent& e) {
  using Op = CesqlExpression::Op;
  switch (n.op) {
    case Op::kLiteral:
      return n.literal;
    case Op::kAttribute:
      if (const std::string* v = e.attribute(n.name)) return Value::str(*v);
      throw EvalError{};  // a missing attribute: the expression is false
    case Op::kExists:
      return Value::boolean(e.attribute(n.name) != nullptr);
    case Op::kNot:
      return Value::boolean(!eval_as(*n.args[0], e, Type::kBoolean).b);
    case Op::kNegate:
      return Value::integer(wrap32(-eval_as(*n.args[0], e, Type::kInteger).i));
    case Op::kBinary:
      return binary(n, e);
    case Op::kLike:
      return Value::boolean(like(eval_as(*n.args[0], e, Type::kString).s, n.literal.s) !=
                            n.negated);
    case Op::kIn: {
      Value x = eval(*n.args[0], e);
      bool found = false;
      for (std::size_t k = 1; k < n.args.size() && !found; ++k) {
        Value y = cast(eval(*n.args[k], e), x.type);  // the left operand's type
        found = x.type == Type::kString    ? x.s == y.s
                : x.type == Type::kInteger ? x.i == y.i
                                           : x.b == y.b;
      }
      return Value::boolean(found != n.negated);
    }
    case Op::kCall:
      return call(n, e);
  }
  throw EvalError{};
}

}  // namespace

Result<std::shared_ptr<const CesqlExpression>> parse_cesql(std::string_view text) {
  auto tokens = tokenize(text);
  if (!tokens) return tokens.error();
  Parser p(std::move(*tokens));
  auto n = p.parse();
  if (!n) return n.error();
  return std::shared_ptr<const CesqlExpression>(std::move(*n));
}

bool cesql_matches(const CesqlExpression& expression, const CloudEvent& event) {
  try {
    return cast(eval(expression, event), Type::kBoolean).b;
  } catch (const EvalError&) {
    return false;
  }
}

}  // namespace elafros
