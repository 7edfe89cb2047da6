#include "llmgw/github/client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "llmgw/version.hpp"

namespace llmgw::github {
namespace {

using nlohmann::json;

constexpr std::string_view kJsonMediaType = "application/vnd.github+json";
constexpr std::string_view kDiffMediaType = "application/vnd.github.diff";
constexpr std::string_view kRawMediaType = "application/vnd.github.raw+json";
constexpr std::string_view kApiVersion = "2022-11-28";
// GitHub lists at most 3000 files (30 pages of 100); comments have no documented cap, so we stop
// at a generous bound rather than loop forever on a server that always says "next".
constexpr int kMaxPages = 100;

bool valid_repo_part(std::string_view part) {
  return !part.empty() && part != "." && part != ".." &&
         std::all_of(part.begin(), part.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
         });
}

std::string string_field(const json& object, std::string_view key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

int int_field(const json& object, std::string_view key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

// `<https://api.github.com/...&page=2>; rel="next", <...>; rel="last"` -> the "next" URL.
std::optional<std::string> next_link(std::string_view header) {
  while (!header.empty()) {
    const auto open = header.find('<');
    const auto close = header.find('>', open);
    if (open == std::string_view::npos || close == std::string_view::npos) {
      return std::nullopt;
    }
    const auto url = header.substr(open + 1, close - open - 1);
    auto params = header.substr(close + 1);
    const auto next_entry = params.find(",");
    const auto this_params = params.substr(0, next_entry);
    if (this_params.find("rel=\"next\"") != std::string_view::npos ||
        this_params.find("rel=next") != std::string_view::npos) {
      return std::string{url};
    }
    if (next_entry == std::string_view::npos) {
      return std::nullopt;
    }
    header = params.substr(next_entry + 1);
  }
  return std::nullopt;
}

// "scheme://host:port" of a URL, for checking that pagination stays on the API's origin (the
// token must never be sent elsewhere).
std::string origin_of(std::string_view url) {
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    return {};
  }
  return std::string{parsed->scheme()} + "://" + std::string{parsed->encoded_authority()};
}

std::string encode_path(std::string_view path) {
  std::string out;
  std::size_t begin = 0;
  while (begin <= path.size()) {
    auto end = path.find('/', begin);
    if (end == std::string_view::npos) {
      end = path.size();
    }
    if (begin != 0) {
      out += '/';
    }
    out += boost::urls::encode(path.substr(begin, end - begin), boost::urls::pchars);
    begin = end + 1;
  }
  return out;
}

std::string render_error(const json& error) {
  if (error.is_string()) {
    return error.get<std::string>();
  }
  if (!error.is_object()) {
    return error.dump();
  }
  std::string out = string_field(error, "resource");
  if (const auto field = string_field(error, "field"); !field.empty()) {
    out += (out.empty() ? "" : ".") + field;
  }
  for (const auto* key : {"code", "message"}) {
    if (const auto value = string_field(error, key); !value.empty()) {
      out += (out.empty() ? "" : " ") + value;
    }
  }
  return out;
}

std::optional<std::string> read_first_line(const std::string& file) {
  std::ifstream in{file};
  if (!in) {
    return std::nullopt;
  }
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
    line.pop_back();
  }
  return line;
}

// The per-file patches rebuilt into one unified diff, for when GitHub refuses the whole diff.
std::string diff_from_patches(const std::vector<ChangedFile>& files) {
  std::string diff;
  for (const auto& file : files) {
    const auto& old_path = file.previous_filename.empty() ? file.filename : file.previous_filename;
    diff += "diff --git a/" + old_path + " b/" + file.filename + "\n";
    if (file.status == "added") {
      diff += "new file mode 100644\n";
    } else if (file.status == "removed") {
      diff += "deleted file mode 100644\n";
    } else if (file.status == "renamed" && old_path != file.filename) {
      diff += "rename from " + old_path + "\nrename to " + file.filename + "\n";
    }
    if (!file.patch) {
      continue;  // binary, or too large for GitHub to include
    }
    diff += "--- " + (file.status == "added" ? std::string{"/dev/null"} : "a/" + old_path) + "\n";
    diff += "+++ " + (file.status == "removed" ? std::string{"/dev/null"} : "b/" + file.filename) +
            "\n";
    diff += *file.patch;
    if (!file.patch->empty() && file.patch->back() != '\n') {
      diff += '\n';
    }
  }
  return diff;
}

ChangedFile parse_changed_file(const json& item) {
  ChangedFile file;
  file.filename = string_field(item, "filename");
  file.previous_filename = string_field(item, "previous_filename");
  file.status = string_field(item, "status");
  file.additions = int_field(item, "additions");
  file.deletions = int_field(item, "deletions");
  if (const auto it = item.find("patch"); it != item.end() && it->is_string()) {
    file.patch = it->get<std::string>();
  }
  return file;
}

}  // namespace

std::optional<RepoRef> parse_repo(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  RepoRef repo{std::string{text.substr(0, slash)}, std::string{text.substr(slash + 1)}};
  if (!valid_repo_part(repo.owner) || !valid_repo_part(repo.name)) {
    return std::nullopt;
  }
  return repo;
}

const FileDiff* PullRequest::find_file_diff(std::string_view path) const {
  const auto it = std::find_if(file_diffs.begin(), file_diffs.end(),
                               [&](const FileDiff& file) { return file.path() == path; });
  return it == file_diffs.end() ? nullptr : &*it;
}

GithubError::GithubError(const std::string& what, int status, std::string api_message,
                         std::vector<std::string> errors)
    : std::runtime_error(what),
      status_(status),
      api_message_(std::move(api_message)),
      errors_(std::move(errors)) {}

std::string resolve_token(const std::optional<std::string>& cli_token,
                          const std::optional<std::string>& token_file) {
  if (cli_token && !cli_token->empty()) {
    return *cli_token;
  }
  if (token_file) {
    auto token = read_first_line(*token_file);
    if (!token) {
      throw std::runtime_error("cannot read the token file " + *token_file);
    }
    return *token;
  }
  const char* env = std::getenv("GITHUB_TOKEN");
  return env ? std::string{env} : std::string{};
}

std::string default_api_url() {
  const char* env = std::getenv("GITHUB_API_URL");
  return env && *env ? std::string{env} : std::string{kDefaultApiUrl};
}

struct Client::Impl {
  ClientConfig config;
  std::optional<net::HttpClient> http;
  std::uint64_t requests = 0;
  std::string api_origin;

  explicit Impl(ClientConfig cfg) : config(std::move(cfg)) {
    while (!config.base_url.empty() && config.base_url.back() == '/') {
      config.base_url.pop_back();
    }
    api_origin = origin_of(config.base_url);
    if (api_origin.empty()) {
      throw std::invalid_argument("not a valid GitHub API URL: " + config.base_url);
    }
    if (!config.transport) {
      http.emplace(config.http);
    }
  }

  std::string repo_url(const RepoRef& repo, std::string_view rest) const {
    return config.base_url + "/repos/" + repo.owner + "/" + repo.name + std::string{rest};
  }

  net::ClientResponse send(std::string method, const std::string& url, std::string_view accept,
                           std::string body = {}) {
    if (origin_of(url) != api_origin) {
      // A Link header pointing elsewhere must not receive our token.
      throw GithubError("refusing to follow a link off " + net::url_host(config.base_url) + " to " +
                            net::url_host(url),
                        0, {}, {});
    }
    net::ClientRequest request;
    request.method = std::move(method);
    request.url = url;
    request.headers = {{"Accept", std::string{accept}},
                       {"X-GitHub-Api-Version", std::string{kApiVersion}},
                       {"User-Agent", "llmgw/" + std::string{kVersion}}};
    if (!config.token.empty()) {
      request.headers.push_back({"Authorization", "Bearer " + config.token});
    }
    if (!body.empty()) {
      request.headers.push_back({"Content-Type", "application/json"});
      request.body = std::move(body);
    }
    auto retry = config.retry;
    retry.idempotent = request.method != "POST";
    if (retry.operation.empty()) {
      retry.operation = request.method + " " + net::url_host(url);
    }
    return net::send_with_retry(
        [&] {
          ++requests;
          return config.transport ? config.transport(request) : http->send(request);
        },
        retry);
  }

  [[noreturn]] void fail(const std::string& url, const net::ClientResponse& response) const {
    std::vector<std::string> errors;
    const auto body = json::parse(response.body, nullptr, false);
    if (body.is_object()) {
      if (const auto it = body.find("errors"); it != body.end() && it->is_array()) {
        for (const auto& error : *it) {
          errors.push_back(render_error(error));
        }
      }
    }
    auto what = net::describe_http_failure(url, response);
    if (!errors.empty()) {
      what += " (";
      for (std::size_t i = 0; i < errors.size(); ++i) {
        what += (i ? "; " : "") + errors[i];
      }
      what += ")";
    }
    if (response.status == 403 || response.status == 429) {
      if (const auto reset = response.header("x-ratelimit-reset")) {
        what += "; rate limit resets at epoch " + std::string{*reset};
      }
    }
    throw GithubError(redact(what), response.status, redact(net::api_error_message(response.body)),
                      std::move(errors));
  }

  // Belt and braces: an API could echo the Authorization header back in an error message.
  std::string redact(std::string text) const {
    if (config.token.empty()) {
      return text;
    }
    for (auto pos = text.find(config.token); pos != std::string::npos;
         pos = text.find(config.token, pos)) {
      text.replace(pos, config.token.size(), "***");
    }
    return text;
  }

  json get_json(const std::string& url) {
    const auto response = send("GET", url, kJsonMediaType);
    if (response.status != 200) {
      fail(url, response);
    }
    auto body = json::parse(response.body, nullptr, false);
    if (body.is_discarded()) {
      throw GithubError(net::url_host(url) + " answered 200 with a body that is not JSON", 200, {},
                        {});
    }
    return body;
  }

  // Every element of a paginated JSON array.
  std::vector<json> get_all_pages(std::string url) {
    std::vector<json> items;
    for (int page = 0; page < kMaxPages; ++page) {
      const auto response = send("GET", url, kJsonMediaType);
      if (response.status != 200) {
        fail(url, response);
      }
      auto body = json::parse(response.body, nullptr, false);
      if (!body.is_array()) {
        throw GithubError(net::url_host(url) + " answered a list request without a JSON array", 200,
                          {}, {});
      }
      for (auto& item : body) {
        items.push_back(std::move(item));
      }
      const auto link = response.header("link");
      const auto next = link ? next_link(*link) : std::nullopt;
      if (!next) {
        return items;
      }
      url = *next;
    }
    spdlog::warn("stopped following pages after {} pages", kMaxPages);
    return items;
  }
};

Client::Client(ClientConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

PullRequestMeta Client::get_pull_request(const RepoRef& repo, int number) {
  const auto body = impl_->get_json(impl_->repo_url(repo, "/pulls/" + std::to_string(number)));
  PullRequestMeta meta;
  meta.number = int_field(body, "number");
  meta.title = string_field(body, "title");
  meta.body = string_field(body, "body");
  meta.state = string_field(body, "state");
  meta.html_url = string_field(body, "html_url");
  if (const auto user = body.find("user"); user != body.end() && user->is_object()) {
    meta.author = string_field(*user, "login");
  }
  for (auto [key, sha, ref] : {std::tuple{"head", &meta.head_sha, &meta.head_ref},
                               std::tuple{"base", &meta.base_sha, &meta.base_ref}}) {
    if (const auto it = body.find(key); it != body.end() && it->is_object()) {
      *sha = string_field(*it, "sha");
      *ref = string_field(*it, "ref");
    }
  }
  if (meta.head_sha.empty()) {
    throw GithubError(
        net::url_host(impl_->config.base_url) + " answered a pull request without a head commit",
        200, {}, {});
  }
  return meta;
}

std::vector<ChangedFile> Client::list_files(const RepoRef& repo, int number) {
  std::vector<ChangedFile> files;
  for (const auto& item : impl_->get_all_pages(
           impl_->repo_url(repo, "/pulls/" + std::to_string(number) + "/files?per_page=100"))) {
    files.push_back(parse_changed_file(item));
  }
  return files;
}

std::optional<std::string> Client::get_diff(const RepoRef& repo, int number) {
  const auto url = impl_->repo_url(repo, "/pulls/" + std::to_string(number));
  auto response = impl_->send("GET", url, kDiffMediaType);
  if (response.status == 406) {
    return std::nullopt;  // "diff too large": the caller falls back to per-file patches
  }
  if (response.status != 200) {
    impl_->fail(url, response);
  }
  return std::move(response.body);
}

PullRequest Client::fetch_pull_request(const RepoRef& repo, int number) {
  PullRequest pr;
  pr.repo = repo;
  pr.meta = get_pull_request(repo, number);
  pr.files = list_files(repo, number);
  if (auto diff = get_diff(repo, number)) {
    pr.diff = std::move(*diff);
  } else {
    spdlog::info("the diff of {}#{} is too large for GitHub; using per-file patches",
                 repo.full_name(), number);
    pr.diff = diff_from_patches(pr.files);
    pr.diff_from_patches = true;
  }
  pr.file_diffs = parse_unified_diff(pr.diff);
  return pr;
}

std::optional<std::string> Client::get_file_content(const RepoRef& repo, std::string_view path,
                                                    std::string_view ref) {
  const auto url =
      impl_->repo_url(repo, "/contents/" + encode_path(path) +
                                "?ref=" + boost::urls::encode(ref, boost::urls::unreserved_chars));
  auto response = impl_->send("GET", url, kRawMediaType);
  if (response.status == 404) {
    return std::nullopt;
  }
  if (response.status != 200) {
    impl_->fail(url, response);
  }
  // The raw media type gives the bytes; a server that ignores it answers the JSON object with
  // base64 content (wrapped at 60 columns).
  const auto content_type = response.header("content-type");
  if (content_type && content_type->find("json") != std::string_view::npos) {
    const auto body = json::parse(response.body, nullptr, false);
    if (body.is_object() && string_field(body, "encoding") == "base64") {
      auto encoded = string_field(body, "content");
      std::erase_if(encoded, [](char c) { return c == '\n' || c == '\r'; });
      std::string decoded(boost::beast::detail::base64::decoded_size(encoded.size()), '\0');
      const auto [written, read] =
          boost::beast::detail::base64::decode(decoded.data(), encoded.data(), encoded.size());
      decoded.resize(written);
      return decoded;
    }
  }
  return std::move(response.body);
}

std::optional<std::vector<ChangedFile>> Client::compare_files(const RepoRef& repo,
                                                              std::string_view base,
                                                              std::string_view head) {
  const auto url =
      impl_->repo_url(repo, "/compare/" + boost::urls::encode(base, boost::urls::unreserved_chars) +
                                "..." + boost::urls::encode(head, boost::urls::unreserved_chars));
  const auto response = impl_->send("GET", url, kJsonMediaType);
  if (response.status == 404) {
    return std::nullopt;
  }
  if (response.status != 200) {
    impl_->fail(url, response);
  }
  const auto body = json::parse(response.body, nullptr, false);
  std::vector<ChangedFile> files;
  if (body.is_object()) {
    if (const auto it = body.find("files"); it != body.end() && it->is_array()) {
      for (const auto& item : *it) {
        files.push_back(parse_changed_file(item));
      }
    }
  }
  return files;
}

std::vector<ExistingComment> Client::list_review_comments(const RepoRef& repo, int number) {
  std::vector<ExistingComment> comments;
  for (const auto& item : impl_->get_all_pages(
           impl_->repo_url(repo, "/pulls/" + std::to_string(number) + "/comments?per_page=100"))) {
    ExistingComment comment;
    if (const auto id = item.find("id"); id != item.end() && id->is_number_integer()) {
      comment.id = id->get<std::int64_t>();
    }
    comment.path = string_field(item, "path");
    if (const auto line = item.find("line"); line != item.end() && line->is_number_integer()) {
      comment.line = line->get<int>();
    }
    comment.side = string_field(item, "side");
    comment.body = string_field(item, "body");
    comments.push_back(std::move(comment));
  }
  return comments;
}

std::vector<ExistingReview> Client::list_reviews(const RepoRef& repo, int number) {
  std::vector<ExistingReview> reviews;
  for (const auto& item : impl_->get_all_pages(
           impl_->repo_url(repo, "/pulls/" + std::to_string(number) + "/reviews?per_page=100"))) {
    ExistingReview review;
    if (const auto id = item.find("id"); id != item.end() && id->is_number_integer()) {
      review.id = id->get<std::int64_t>();
    }
    review.body = string_field(item, "body");
    review.commit_id = string_field(item, "commit_id");
    review.state = string_field(item, "state");
    reviews.push_back(std::move(review));
  }
  return reviews;
}

PostedReview Client::create_review(const RepoRef& repo, int number, const ReviewRequest& review) {
  json comments = json::array();
  for (const auto& comment : review.comments) {
    json item = {{"path", comment.path},
                 {"line", comment.line},
                 {"side", std::string{to_string(comment.side)}},
                 {"body", comment.body}};
    if (comment.start_line) {
      item["start_line"] = *comment.start_line;
      item["start_side"] = std::string{to_string(comment.side)};
    }
    comments.push_back(std::move(item));
  }
  json body = {{"commit_id", review.commit_id}, {"body", review.body}, {"comments", comments}};
  if (!review.event.empty()) {
    body["event"] = review.event;  // no event: the review stays PENDING
  }
  const auto url = impl_->repo_url(repo, "/pulls/" + std::to_string(number) + "/reviews");
  const auto response = impl_->send("POST", url, kJsonMediaType, body.dump());
  if (response.status != 200 && response.status != 201) {
    impl_->fail(url, response);
  }
  const auto answer = json::parse(response.body, nullptr, false);
  PostedReview posted;
  if (answer.is_object()) {
    if (const auto id = answer.find("id"); id != answer.end() && id->is_number_integer()) {
      posted.id = id->get<std::int64_t>();
    }
    posted.html_url = string_field(answer, "html_url");
  }
  return posted;
}

void Client::delete_pending_review(const RepoRef& repo, int number, std::int64_t review_id) {
  const auto url = impl_->repo_url(
      repo, "/pulls/" + std::to_string(number) + "/reviews/" + std::to_string(review_id));
  const auto response = impl_->send("DELETE", url, kJsonMediaType);
  if (response.status != 200 && response.status != 204) {
    impl_->fail(url, response);
  }
}

std::uint64_t Client::requests_sent() const noexcept {
  return impl_->requests;
}

}  // namespace llmgw::github
