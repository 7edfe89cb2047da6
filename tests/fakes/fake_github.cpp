#include "fakes/fake_github.hpp"

#include <boost/beast/core/detail/base64.hpp>
#include <boost/url/parse.hpp>

#include "fakes/sample_pr.hpp"

namespace llmgw::fakes {
namespace {

using nlohmann::json;

constexpr std::string_view kDocs = "https://docs.github.com/rest";

json error_body(std::string_view message) {
  return {{"message", message}, {"documentation_url", kDocs}};
}

struct StoredReview {
  std::int64_t id = 0;
  std::string state;  // "COMMENTED" or "PENDING"
  json posted;
  bool users_own = false;  // a pending review the user started in the browser
};

struct StoredPull {
  FakePull pull;
  std::vector<FakePull> earlier_heads;  // before push_head, for the compare API
  github::CommentableLines commentable;
  std::vector<StoredReview> reviews;
  std::vector<json> comments;
};

int query_int(const boost::urls::url_view& url, std::string_view key, int fallback) {
  const auto params = url.params();
  const auto it = params.find(key);
  if (it == params.end() || !(*it).has_value) {
    return fallback;
  }
  try {
    return std::stoi(std::string{(*it).value});
  } catch (const std::exception&) {
    return fallback;
  }
}

std::string query_string(const boost::urls::url_view& url, std::string_view key) {
  const auto params = url.params();
  const auto it = params.find(key);
  return it == params.end() ? std::string{} : std::string{(*it).value};
}

}  // namespace

struct FakeGithub::State {
  mutable std::mutex mutex;
  std::string base_url;
  std::map<std::string, StoredPull> pulls;  // "owner/repo#n"
  bool diff_too_large = false;
  std::string token;
  std::set<std::pair<std::string, int>> refused;
  int rate_limited = 0;
  int secondary_limited = 0;
  bool drop_after_review = false;
  std::map<std::string, FakePull> demo_pushes;  // "owner/repo#n" -> the next head
  int rate_limit_status = 403;
  std::chrono::seconds reset_in{1};
  std::vector<std::string> log;
  std::uint64_t rejected_reviews = 0;
  std::int64_t next_id = 1000;
};

FakePull sample_fake_pull() {
  const auto pr = sample_pull_request();
  return {pr.meta, pr.files, pr.diff, sample_head_files(), {}};
}

FakePull sample_fake_pull_second_push() {
  const auto pr = sample_pull_request_second_push();
  return {pr.meta, pr.files, pr.diff, sample_head_files_second_push(), {}};
}

FakeGithub::FakeGithub(std::optional<net::ServerTlsOptions> tls)
    : state_(std::make_unique<State>()) {
  net::ServerOptions options;
  options.tls = std::move(tls);
  server_ = std::make_unique<net::HttpServer>(
      options,
      [this](const net::ServerRequest& request,
             net::ResponseStream& stream) -> boost::asio::awaitable<void> {
        auto reply = handle(request);
        if (reply.status == kDropConnection) {
          stream.abort();
          co_return;
        }
        co_await stream.respond(reply.status, std::move(reply.headers), std::move(reply.body));
      });
  server_->start();
  state_->base_url = server_->base_url();
}

FakeGithub::~FakeGithub() {
  server_->stop();
}

std::string FakeGithub::base_url() const {
  return state_->base_url;
}

void FakeGithub::add_pull(const std::string& owner_repo, FakePull pull) {
  std::lock_guard lock{state_->mutex};
  const auto key = owner_repo + "#" + std::to_string(pull.meta.number);
  StoredPull stored;
  stored.commentable = github::CommentableLines{github::parse_unified_diff(pull.diff)};
  stored.pull = std::move(pull);
  state_->pulls[key] = std::move(stored);
}

void FakeGithub::set_diff_too_large(bool too_large) {
  std::lock_guard lock{state_->mutex};
  state_->diff_too_large = too_large;
}

void FakeGithub::require_token(std::string token) {
  std::lock_guard lock{state_->mutex};
  state_->token = std::move(token);
}

void FakeGithub::refuse_comment_at(std::string path, int line) {
  std::lock_guard lock{state_->mutex};
  state_->refused.emplace(std::move(path), line);
}

void FakeGithub::rate_limit_next(int count, int status, std::chrono::seconds reset_in) {
  std::lock_guard lock{state_->mutex};
  state_->rate_limited = count;
  state_->rate_limit_status = status;
  state_->reset_in = reset_in;
}

void FakeGithub::secondary_rate_limit_next(int count) {
  std::lock_guard lock{state_->mutex};
  state_->secondary_limited = count;
}

void FakeGithub::drop_connection_after_next_review() {
  std::lock_guard lock{state_->mutex};
  state_->drop_after_review = true;
}

void FakeGithub::add_user_pending_review(const std::string& owner_repo, int number) {
  std::lock_guard lock{state_->mutex};
  auto& pull = state_->pulls.at(owner_repo + "#" + std::to_string(number));
  StoredReview review{state_->next_id++, "PENDING",
                      json{{"body", ""}, {"commit_id", pull.pull.meta.head_sha}}, true};
  pull.reviews.push_back(std::move(review));
}

void FakeGithub::push_head(const std::string& owner_repo, FakePull pull) {
  std::lock_guard lock{state_->mutex};
  auto& stored = state_->pulls.at(owner_repo + "#" + std::to_string(pull.meta.number));
  stored.commentable = github::CommentableLines{github::parse_unified_diff(pull.diff)};
  stored.earlier_heads.push_back(std::move(stored.pull));
  stored.pull = std::move(pull);
}

void FakeGithub::allow_demo_push(const std::string& owner_repo, FakePull pull) {
  std::lock_guard lock{state_->mutex};
  state_->demo_pushes[owner_repo + "#" + std::to_string(pull.meta.number)] = std::move(pull);
}

std::vector<json> FakeGithub::posted_reviews() const {
  std::lock_guard lock{state_->mutex};
  std::vector<json> out;
  for (const auto& [key, pull] : state_->pulls) {
    for (const auto& review : pull.reviews) {
      if (review.state != "PENDING") {
        out.push_back(review.posted);
      }
    }
  }
  return out;
}

std::vector<json> FakeGithub::review_comments() const {
  std::lock_guard lock{state_->mutex};
  std::vector<json> out;
  for (const auto& [key, pull] : state_->pulls) {
    out.insert(out.end(), pull.comments.begin(), pull.comments.end());
  }
  return out;
}

std::uint64_t FakeGithub::requests(std::string_view path_prefix, std::string_view method) const {
  std::lock_guard lock{state_->mutex};
  std::uint64_t count = 0;
  for (const auto& entry : state_->log) {
    const auto space = entry.find(' ');
    const auto entry_method = std::string_view{entry}.substr(0, space);
    const auto target = std::string_view{entry}.substr(space + 1);
    if ((method.empty() || entry_method == method) &&
        target.substr(0, path_prefix.size()) == path_prefix) {
      ++count;
    }
  }
  return count;
}

std::vector<std::string> FakeGithub::request_log() const {
  std::lock_guard lock{state_->mutex};
  return state_->log;
}

std::uint64_t FakeGithub::rejected_reviews() const {
  std::lock_guard lock{state_->mutex};
  return state_->rejected_reviews;
}

FakeGithub::Reply FakeGithub::handle(const net::ServerRequest& request) {
  std::lock_guard lock{state_->mutex};
  state_->log.push_back(request.method + " " + request.target);
  Reply reply;
  if (state_->secondary_limited > 0) {
    --state_->secondary_limited;
    reply.status = 403;
    reply.body = error_body(
                     "You have exceeded a secondary rate limit. Please wait a few minutes before "
                     "you try again. If you reach out to GitHub Support for help, please include "
                     "the request ID 0000:1111:2222.")
                     .dump();
  } else if (state_->rate_limited > 0) {
    --state_->rate_limited;
    const auto reset = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()) +
                       state_->reset_in;
    reply.status = state_->rate_limit_status;
    if (reply.status == 429) {
      reply.headers = {{"Retry-After", std::to_string(state_->reset_in.count())}};
      reply.body = error_body("You have exceeded a secondary rate limit.").dump();
    } else {
      reply.headers = {{"x-ratelimit-limit", "60"},
                       {"x-ratelimit-remaining", "0"},
                       {"x-ratelimit-reset", std::to_string(reset.count())}};
      reply.body = error_body("API rate limit exceeded for 127.0.0.1.").dump();
    }
  } else if (!state_->token.empty() &&
             request.header("authorization") != "Bearer " + state_->token) {
    reply.status = 401;
    reply.body = error_body("Bad credentials").dump();
  } else {
    reply = route(request);
  }
  reply.headers.push_back({"X-GitHub-Media-Type", "github.v3"});
  if (!net::find_header(reply.headers, "content-type")) {
    reply.headers.push_back({"Content-Type", "application/json; charset=utf-8"});
  }
  return reply;
}

// Runs under the state mutex. GET /compare/A...B between two heads a pull request has had: the
// files whose patch differs (what the commits after A changed), as GitHub lists them.
FakeGithub::Reply FakeGithub::compare(const std::string& owner_repo, std::string_view range) {
  const auto dots = range.find("...");
  if (dots == std::string_view::npos) {
    return {404, {}, error_body("Not Found").dump()};
  }
  const auto base = range.substr(0, dots);
  const auto head = range.substr(dots + 3);
  for (const auto& [key, stored] : state_->pulls) {
    if (key.rfind(owner_repo + "#", 0) != 0 || stored.pull.meta.head_sha != head) {
      continue;
    }
    const auto earlier =
        std::find_if(stored.earlier_heads.begin(), stored.earlier_heads.end(),
                     [&](const FakePull& pull) { return pull.meta.head_sha == base; });
    if (earlier == stored.earlier_heads.end()) {
      break;
    }
    json files = json::array();
    for (const auto& file : stored.pull.files) {
      const auto before = std::find_if(
          earlier->files.begin(), earlier->files.end(),
          [&](const github::ChangedFile& old) { return old.filename == file.filename; });
      if (before != earlier->files.end() && before->patch == file.patch) {
        continue;
      }
      json item = {{"filename", file.filename}, {"status", file.status}};
      if (file.patch) {
        item["patch"] = *file.patch;
      }
      files.push_back(std::move(item));
    }
    return {200, {}, json{{"status", "ahead"}, {"ahead_by", 1}, {"files", files}}.dump()};
  }
  return {404, {}, error_body("Not Found").dump()};
}

// Runs under the state mutex.
FakeGithub::Reply FakeGithub::route(const net::ServerRequest& request) {
  const auto parsed = boost::urls::parse_origin_form(request.target);
  if (!parsed) {
    return {400, {}, error_body("Bad request").dump()};
  }
  std::vector<std::string> segments;
  for (const auto segment : parsed->segments()) {
    segments.emplace_back(segment);
  }
  const auto not_found = Reply{404, {}, error_body("Not Found").dump()};
  if (segments.size() == 5 && segments[0] == "_fake" && segments[1] == "push" &&
      request.method == "POST") {
    const auto key = segments[2] + "/" + segments[3] + "#" + segments[4];
    const auto push = state_->demo_pushes.find(key);
    const auto pull = state_->pulls.find(key);
    if (push == state_->demo_pushes.end() || pull == state_->pulls.end()) {
      return not_found;
    }
    auto& stored = pull->second;
    stored.commentable = github::CommentableLines{github::parse_unified_diff(push->second.diff)};
    stored.earlier_heads.push_back(std::move(stored.pull));
    stored.pull = std::move(push->second);
    state_->demo_pushes.erase(push);
    return {200, {}, json{{"head", stored.pull.meta.head_sha}}.dump()};
  }
  if (segments.size() < 4 || segments[0] != "repos") {
    return not_found;
  }
  const auto owner_repo = segments[1] + "/" + segments[2];

  if (segments[3] == "contents" && request.method == "GET") {
    std::string path;
    for (std::size_t i = 4; i < segments.size(); ++i) {
      path += (i > 4 ? "/" : "") + segments[i];
    }
    const auto ref = query_string(*parsed, "ref");
    for (const auto& [key, stored] : state_->pulls) {
      const auto& meta = stored.pull.meta;
      if (key.rfind(owner_repo + "#", 0) != 0 || (meta.head_sha != ref && meta.base_sha != ref)) {
        continue;
      }
      const auto& files = meta.head_sha == ref ? stored.pull.head_files : stored.pull.base_files;
      const auto file = files.find(path);
      if (file == files.end()) {
        return not_found;
      }
      const auto accept = request.header("accept").value_or("");
      if (accept.find("raw") != std::string_view::npos) {
        return {200, {{"Content-Type", "application/vnd.github.raw; charset=utf-8"}}, file->second};
      }
      std::string encoded(boost::beast::detail::base64::encoded_size(file->second.size()), '\0');
      encoded.resize(boost::beast::detail::base64::encode(encoded.data(), file->second.data(),
                                                          file->second.size()));
      return {200,
              {},
              json{{"type", "file"}, {"path", path}, {"encoding", "base64"}, {"content", encoded}}
                  .dump()};
    }
    return not_found;
  }

  if (segments[3] == "compare" && segments.size() == 5 && request.method == "GET") {
    return compare(owner_repo, segments[4]);
  }
  if (segments[3] != "pulls" || segments.size() < 5) {
    return not_found;
  }
  const auto it = state_->pulls.find(owner_repo + "#" + segments[4]);
  if (it == state_->pulls.end()) {
    return not_found;
  }
  auto& stored = it->second;
  const auto& meta = stored.pull.meta;
  const auto resource = segments.size() > 5 ? segments[5] : std::string{};

  // A page of `items`, with GitHub's Link header.
  const auto paginate = [&](const std::vector<json>& items) {
    const int per_page = std::clamp(query_int(*parsed, "per_page", 30), 1, 100);
    const int page = std::max(1, query_int(*parsed, "page", 1));
    const int pages = std::max(1, static_cast<int>((items.size() + per_page - 1) / per_page));
    json body = json::array();
    for (std::size_t i = static_cast<std::size_t>((page - 1) * per_page);
         i < items.size() && i < static_cast<std::size_t>(page * per_page); ++i) {
      body.push_back(items[i]);
    }
    Reply reply{200, {}, body.dump()};
    const auto link_to = [&](int target_page, const char* rel) {
      return "<" + state_->base_url + std::string{parsed->path()} +
             "?per_page=" + std::to_string(per_page) + "&page=" + std::to_string(target_page) +
             ">; rel=\"" + rel + "\"";
    };
    std::string link;
    if (page < pages) {
      link = link_to(page + 1, "next") + ", " + link_to(pages, "last");
    }
    if (page > 1) {
      link += (link.empty() ? "" : ", ") + link_to(1, "first") + ", " + link_to(page - 1, "prev");
    }
    if (!link.empty()) {
      reply.headers.push_back({"Link", link});
    }
    return reply;
  };

  if (resource.empty() && request.method == "GET") {
    const auto accept = request.header("accept").value_or("");
    if (accept.find("diff") != std::string_view::npos) {
      if (state_->diff_too_large) {
        return {406,
                {},
                json{{"message",
                      "Sorry, the diff exceeded the maximum number of files (300). Consider "
                      "using 'List pull requests files' API or locally cloning the repository "
                      "instead."},
                     {"errors",
                      {{{"resource", "PullRequest"}, {"field", "diff"}, {"code", "too_large"}}}},
                     {"documentation_url", kDocs}}
                    .dump()};
      }
      return {200, {{"Content-Type", "text/plain; charset=utf-8"}}, stored.pull.diff};
    }
    return {200,
            {},
            json{{"number", meta.number},
                 {"title", meta.title},
                 {"body", meta.body.empty() ? json(nullptr) : json(meta.body)},
                 {"state", meta.state},
                 {"html_url",
                  state_->base_url + "/" + owner_repo + "/pull/" + std::to_string(meta.number)},
                 {"user", {{"login", meta.author}}},
                 {"head", {{"sha", meta.head_sha}, {"ref", meta.head_ref}}},
                 {"base", {{"sha", meta.base_sha}, {"ref", meta.base_ref}}}}
                .dump()};
  }
  if (resource == "files" && request.method == "GET") {
    std::vector<json> files;
    for (const auto& file : stored.pull.files) {
      json item = {{"filename", file.filename},
                   {"status", file.status},
                   {"additions", file.additions},
                   {"deletions", file.deletions},
                   {"changes", file.additions + file.deletions}};
      if (file.patch) {
        item["patch"] = *file.patch;
      }
      if (!file.previous_filename.empty()) {
        item["previous_filename"] = file.previous_filename;
      }
      files.push_back(std::move(item));
    }
    return paginate(files);
  }
  if (resource == "comments" && request.method == "GET") {
    return paginate(stored.comments);
  }
  if (resource == "reviews" && request.method == "GET" && segments.size() == 6) {
    std::vector<json> reviews;
    for (const auto& review : stored.reviews) {
      reviews.push_back({{"id", review.id},
                         {"state", review.state},
                         {"body", review.posted.value("body", "")},
                         {"commit_id", review.posted.value("commit_id", "")}});
    }
    return paginate(reviews);
  }
  if (resource == "reviews" && request.method == "POST" && segments.size() == 6) {
    const auto body = json::parse(request.body, nullptr, false);
    const auto unprocessable = [&](json errors) {
      ++state_->rejected_reviews;
      return Reply{422,
                   {},
                   json{{"message", "Unprocessable Entity"},
                        {"errors", std::move(errors)},
                        {"documentation_url", kDocs},
                        {"status", "422"}}
                       .dump()};
    };
    if (!body.is_object()) {
      return {400, {}, error_body("Problems parsing JSON").dump()};
    }
    if (body.value("commit_id", "") != meta.head_sha) {
      return unprocessable({"commit_id is not part of the pull request"});
    }
    const bool pending = !body.contains("event");
    const bool has_pending = std::any_of(stored.reviews.begin(), stored.reviews.end(),
                                         [](const auto& r) { return r.state == "PENDING"; });
    const bool has_comments = !body.value("comments", json::array()).empty();
    // GitHub keeps one pending review per user: a new review with inline comments would need a
    // second one, even when it is published at once.
    if (has_pending && (pending || has_comments)) {
      return unprocessable({"User can only have one pending review per pull request"});
    }
    // Like GitHub: one comment it cannot place fails the whole review, without saying which.
    for (const auto& comment : body.value("comments", json::array())) {
      const auto path = comment.value("path", "");
      const int line = comment.value("line", 0);
      const auto side = github::parse_side(comment.value("side", "RIGHT"));
      if (!side || !stored.commentable.contains(path, line, *side) ||
          state_->refused.contains({path, line})) {
        return unprocessable({"Line could not be resolved"});
      }
      // Multi-line: every line from start_line to line on the diff, start_side = side.
      if (comment.contains("start_line")) {
        const int start = comment.value("start_line", 0);
        if (start < 1 || start >= line ||
            comment.value("start_side", "RIGHT") != comment.value("side", "RIGHT")) {
          return unprocessable({"Start line must precede the end line"});
        }
        for (int n = start; n < line; ++n) {
          if (!stored.commentable.contains(path, n, *side)) {
            return unprocessable({"Start line could not be resolved"});
          }
        }
      }
    }
    StoredReview review{state_->next_id++, pending ? "PENDING" : "COMMENTED", body, false};
    if (!pending) {
      for (const auto& comment : body.value("comments", json::array())) {
        json stored_comment = comment;
        stored_comment["id"] = state_->next_id++;
        stored_comment["pull_request_review_id"] = review.id;
        stored_comment["user"] = {{"login", "llmgw-bot"}};
        stored.comments.push_back(std::move(stored_comment));
      }
    }
    stored.reviews.push_back(review);
    if (state_->drop_after_review) {
      state_->drop_after_review = false;
      return {kDropConnection, {}, {}};
    }
    return {200,
            {},
            json{{"id", review.id},
                 {"state", review.state},
                 {"body", body.value("body", "")},
                 {"commit_id", meta.head_sha},
                 {"html_url", state_->base_url + "/" + owner_repo + "/pull/" +
                                  std::to_string(meta.number) + "#pullrequestreview-" +
                                  std::to_string(review.id)}}
                .dump()};
  }
  if (resource == "reviews" && request.method == "DELETE" && segments.size() == 7) {
    const auto review =
        std::find_if(stored.reviews.begin(), stored.reviews.end(),
                     [&](const auto& r) { return std::to_string(r.id) == segments[6]; });
    if (review == stored.reviews.end()) {
      return not_found;
    }
    if (review->state != "PENDING") {
      return {422,
              {},
              json{{"message", "Unprocessable Entity"},
                   {"errors", {"Can not delete a non-pending pull request review"}}}
                  .dump()};
    }
    const json answer = {{"id", review->id}, {"state", "PENDING"}};
    stored.reviews.erase(review);
    return {200, {}, answer.dump()};
  }
  return not_found;
}

}  // namespace llmgw::fakes
