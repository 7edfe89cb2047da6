// The Redis side of shared placements (placement_store.hpp): three Lua scripts on one prelude,
// loaded on every connection and called by their SHA-1 (EVALSHA; EVAL when Redis lost its script
// cache).

#include "llmgw/routing/placement_store.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>

namespace llmgw::routing {
namespace {

// What every script starts with. Each takes KEYS[1], the placement, and ARGV[1..3]: the idle time
// in ms, the node-set key prefix and the session's member name (its position).
constexpr const char* kPrelude = R"lua(
local idle = tonumber(ARGV[1])
local set_prefix = ARGV[2]
local member = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Stores `value` as the placement and the member in its node's set, both expiring after idle.
local function remember(value)
  local set = set_prefix .. string.sub(value, 2)
  redis.call('SET', KEYS[1], value, 'PX', idle)
  redis.call('ZADD', set, now, member)
  redis.call('PEXPIRE', set, idle)
  return value
end
-- Takes the member out of the set of the node that `value` names.
local function leave(value)
  redis.call('ZREM', set_prefix .. string.sub(value, 2), member)
end
)lua";

// PLACE. KEYS[1]: the placement. ARGV: idle ms, node-set key prefix, the session's member name
// (its position), owner id, owner healthy (1/0), fallback id, healthy weight W,
// the node the session was last routed to without the store ("" if none), then per node: id,
// weight, keep (1/0), fits (1/0), candidates first in order. Returns {placement value, 1 if this
// call placed the session (none was kept), else 0}. A session without a placement that the
// replica routed while Redis was away goes where it went (its KV cache is there), if that node may
// keep placements, whatever the counts.
//
// Worked example: nodes a (owner), b, c of weight 1, all healthy; live sessions a 2, b 1, c 0
// (S = 3). The session cap is ceil((3 + 1) × 1 / 3) = 2: a is at its cap, so a new session goes
// to b (the next candidate, 1 < 2) and the script stores "hb". A second replica placing the same
// session a moment later finds "hb", keeps it (b may keep placements), and returns it too.
constexpr const char* kPlaceBody = R"lua(
local owner = ARGV[4]
local owner_healthy = ARGV[5] == '1'
local nodes = {}
local order = {}
for i = 9, #ARGV, 4 do
  local node = {id = ARGV[i], weight = tonumber(ARGV[i + 1]), keep = ARGV[i + 2] == '1',
                fits = ARGV[i + 3] == '1'}
  nodes[node.id] = node
  order[#order + 1] = node
end
local current = redis.call('GET', KEYS[1])
if current then
  local node = nodes[string.sub(current, 2)]
  local failover = string.sub(current, 1, 1) == 'f'
  if node and node.keep and not (failover and owner_healthy) then
    return {remember(current), 0}
  end
  leave(current)
end
local live = 0
for _, node in ipairs(order) do
  local set = set_prefix .. node.id
  redis.call('ZREMRANGEBYSCORE', set, '-inf', now - idle)
  node.sessions = redis.call('ZCARD', set)
  live = live + node.sessions
end
local home = ARGV[6]
local total_weight = tonumber(ARGV[7])
local preferred = nodes[ARGV[8]]
if preferred and preferred.keep then
  home = preferred.id
else
  for _, node in ipairs(order) do
    if node.fits and total_weight > 0 and
       node.sessions < math.ceil((live + 1) * node.weight / total_weight - 1e-9) then
      home = node.id
      break
    end
  end
end
local flag = 'h'
if home ~= owner and not owner_healthy then
  flag = 'f'
end
return {remember(flag .. home), 1}
)lua";

// TOUCH. KEYS[1]: the placement. ARGV: idle ms, node-set key prefix, member, the cached value
// (written when the key is missing, or over a tentative "t" value that is not this replica's:
// a placement a replica read from Redis or made through it wins over another replica's guess
// from a Redis outage). Returns the stored value.
constexpr const char* kTouchBody = R"lua(
local current = redis.call('GET', KEYS[1])
if not current then
  current = ARGV[4]
elseif string.sub(current, 1, 1) == 't' and string.sub(ARGV[4], 1, 1) ~= 't' then
  leave(current)
  current = ARGV[4]
end
return remember(current)
)lua";

// CLAIM. KEYS[1]: the placement. ARGV: idle ms, node-set key prefix, member, the value to store
// (the node a request used while the store was late), the value expected (the late answer).
// Stores the first if the placement is the second or missing (moving the member between the
// nodes' sets); leaves another replica's newer placement alone. Returns the stored value.
constexpr const char* kClaimBody = R"lua(
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[5] and current ~= ARGV[4] then
  return current
end
if current and current ~= ARGV[4] then
  leave(current)
end
return remember(ARGV[4])
)lua";

std::string sha1_hex(std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha1(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

// A script's text (the prelude and its body) and its SHA-1, for SCRIPT LOAD and EVALSHA.
struct Script {
  explicit Script(const char* body) : text(std::string{kPrelude} + body), sha(sha1_hex(text)) {}
  std::string text;
  std::string sha;
};

const Script& place_script() {
  static const Script script{kPlaceBody};
  return script;
}

const Script& touch_script() {
  static const Script script{kTouchBody};
  return script;
}

const Script& claim_script() {
  static const Script script{kClaimBody};
  return script;
}

// The preheat of a session's move to a node (ARGV[1]), for ARGV[2] ms: 1 for the first replica to
// ask, 0 for any other asking for the same node meanwhile. A move to another node claims anew.
constexpr const char* kPreheatClaimBody = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
)lua";

const Script& preheat_claim_script() {
  static const Script script{kPreheatClaimBody};
  return script;
}

std::string position_member(std::uint64_t position) {
  return fmt::format("{:016x}", position);
}

// Calls a script by SHA; once more with its text when Redis answers NOSCRIPT.
void call_script(net::RedisClient& client, const Script& script, std::vector<std::string> args,
                 std::function<void(net::RedisReply)> done) {
  args.insert(args.begin(), {"EVALSHA", script.sha, "1"});
  client.command(args, [&client, &script, args, done = std::move(done)](net::RedisReply reply) {
    if (reply.kind == net::RedisReply::Kind::error && reply.text.starts_with("NOSCRIPT")) {
      auto again = args;
      again[0] = "EVAL";
      again[1] = script.text;
      client.command(std::move(again), done);
      return;
    }
    done(std::move(reply));
  });
}

// A script answering one placement value.
std::function<void(net::RedisReply)> placement_reply(PlacementStore::Done done) {
  return [done = std::move(done)](net::RedisReply reply) {
    done(reply.kind == net::RedisReply::Kind::string ? decode_placement(reply.text) : std::nullopt);
  };
}

}  // namespace

std::string encode_placement(const Placement& placement) {
  return (placement.failover ? "f" : "h") + placement.home;
}

std::optional<Placement> decode_placement(std::string_view value) {
  if (value.size() < 2 || (value.front() != 'h' && value.front() != 'f' && value.front() != 't')) {
    return std::nullopt;
  }
  return Placement{std::string(value.substr(1)), value.front() == 'f'};
}

PlacementStore::PlacementStore(PlacementStoreOptions options) : options_(std::move(options)) {
  net::RedisClientOptions client;
  client.endpoint = options_.endpoint;
  client.name = "placement store";
  client.slow_after = options_.timeout;
  // A Redis that answers nothing for a second is hung (SIGSTOP, a partition): connect anew.
  client.drop_after = std::max(std::chrono::milliseconds{1'000}, options_.timeout * 10);
  client.setup = {{"SCRIPT", "LOAD", place_script().text},
                  {"SCRIPT", "LOAD", touch_script().text},
                  {"SCRIPT", "LOAD", claim_script().text}};
  client.on_availability = [this](bool up) {
    if (options_.on_availability) {
      options_.on_availability(up);
    }
    if (up) {
      write_fallbacks();
    }
  };
  if (options_.on_ready) {
    client.on_ready = [this] { options_.on_ready(*this); };
  }
  client_ = std::make_unique<net::RedisClient>(std::move(client));
}

PlacementStore::~PlacementStore() {
  stop();
}

void PlacementStore::stop() {
  client_->stop();
}

bool PlacementStore::available() const noexcept {
  return client_->available();
}

void PlacementStore::place(const PlacementRequest& request, PlaceDone done) {
  std::vector<std::string> args{options_.key_prefix + "p:" + position_member(request.key_position),
                                std::to_string(request.idle.count()),
                                options_.key_prefix + "n:",
                                position_member(request.key_position),
                                request.owner,
                                request.owner_healthy ? "1" : "0",
                                request.fallback,
                                fmt::format("{}", request.healthy_weight),
                                take_fallback(request.key_position)};
  for (const auto& node : request.nodes) {
    args.push_back(node.id);
    args.push_back(fmt::format("{}", node.weight));
    args.push_back(node.keep ? "1" : "0");
    args.push_back(node.fits ? "1" : "0");
  }
  call_script(*client_, place_script(), std::move(args),
              [done = std::move(done)](net::RedisReply reply) {
                if (reply.kind != net::RedisReply::Kind::array || reply.elements.size() != 2) {
                  done(std::nullopt, false);
                  return;
                }
                done(decode_placement(reply.elements[0]), reply.elements[1] == "1");
              });
}

void PlacementStore::touch(std::uint64_t key_position, const Placement& cached,
                           std::chrono::milliseconds idle, Done done) {
  touch_value(key_position, encode_placement(cached), idle, std::move(done));
}

void PlacementStore::touch_value(std::uint64_t key_position, std::string value,
                                 std::chrono::milliseconds idle, Done done) {
  std::vector<std::string> args{
      options_.key_prefix + "p:" + position_member(key_position), std::to_string(idle.count()),
      options_.key_prefix + "n:", position_member(key_position), std::move(value)};
  call_script(*client_, touch_script(), std::move(args), placement_reply(std::move(done)));
}

void PlacementStore::claim_preheat(std::uint64_t key_position, const std::string& node,
                                   std::chrono::milliseconds ttl, std::function<void(bool)> done) {
  std::vector<std::string> args{options_.key_prefix + "w:" + position_member(key_position), node,
                                std::to_string(ttl.count())};
  call_script(*client_, preheat_claim_script(), std::move(args),
              [done = std::move(done)](net::RedisReply reply) {
                done(reply.kind == net::RedisReply::Kind::integer && reply.integer == 1);
              });
}

void PlacementStore::note_fallback(std::uint64_t key_position, const Placement& used,
                                   std::chrono::milliseconds idle) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(fallbacks_mutex_);
  if (fallbacks_.size() >= kMaxFallbacks) {
    std::erase_if(fallbacks_, [&](const auto& entry) { return now >= entry.second.expires; });
    if (fallbacks_.size() >= kMaxFallbacks) {
      return;  // an outage longer than the table: the rest are placed afresh
    }
  }
  fallbacks_[key_position] = {used, now + idle, idle};
}

std::string PlacementStore::take_fallback(std::uint64_t key_position) {
  std::lock_guard lock(fallbacks_mutex_);
  const auto it = fallbacks_.find(key_position);
  if (it == fallbacks_.end()) {
    return {};
  }
  Fallback fallback = std::move(it->second);
  fallbacks_.erase(it);
  return std::chrono::steady_clock::now() < fallback.expires ? fallback.used.home : std::string{};
}

void PlacementStore::write_fallbacks() {
  std::unordered_map<std::uint64_t, Fallback> noted;
  {
    std::lock_guard lock(fallbacks_mutex_);
    noted.swap(fallbacks_);
  }
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [position, fallback] : noted) {
    if (now < fallback.expires) {  // tentative: a replica's cached placement replaces it
      touch_value(position, "t" + fallback.used.home, fallback.idle,
                  [](std::optional<Placement>) {});
    }
  }
}

void PlacementStore::claim(std::uint64_t key_position, const Placement& used, const Placement& late,
                           std::chrono::milliseconds idle, Done done) {
  std::vector<std::string> args{options_.key_prefix + "p:" + position_member(key_position),
                                std::to_string(idle.count()),
                                options_.key_prefix + "n:",
                                position_member(key_position),
                                encode_placement(used),
                                encode_placement(late)};
  call_script(*client_, claim_script(), std::move(args), placement_reply(std::move(done)));
}

}  // namespace llmgw::routing
