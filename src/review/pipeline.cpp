#include "llmgw/review/pipeline.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "llmgw/llm/usage.hpp"
#include "llmgw/review/agent.hpp"
#include "llmgw/review/ignore.hpp"
#include "llmgw/review/repo_config.hpp"
#include "llmgw/review/tools.hpp"

namespace llmgw::review {
namespace {

using Progress = std::function<void(const std::string&)>;

RepoConfig read_repo_config(github::Client& github, const github::PullRequest& pr,
                            const ReviewSettings& settings, const Progress& progress) {
  if (!settings.read_repo_config || pr.meta.base_sha.empty()) {
    return {};
  }
  const auto text = github.get_file_content(pr.repo, settings.repo_config_path, pr.meta.base_sha);
  if (!text) {
    return {};
  }
  try {
    auto config = parse_repo_config(*text);
    progress("  using " + settings.repo_config_path + " from the base commit " +
             pr.meta.base_sha.substr(0, 12));
    return config;
  } catch (const RepoConfigError& e) {
    throw RepoConfigError(settings.repo_config_path + " (base commit " +
                          pr.meta.base_sha.substr(0, 12) + "): " + e.what());
  }
}

// Keeps the files changed since the last llmgw review; returns that review's head, or nullopt
// for a full review. `notes` receives what the summary should say.
std::optional<std::string> narrow_to_new_commits(github::Client& github, github::PullRequest& pr,
                                                 std::vector<std::string>& notes,
                                                 const Progress& progress) {
  const auto last = last_reviewed_head(github.list_reviews(pr.repo, pr.meta.number));
  if (!last || *last == pr.meta.head_sha) {
    return std::nullopt;
  }
  const auto changed = github.compare_files(pr.repo, *last, pr.meta.head_sha);
  if (!changed) {
    notes.push_back("_The last reviewed commit `" + last->substr(0, 12) +
                    "` is no longer part of the branch (force-push?): this is a full review._");
    progress("  last reviewed commit " + last->substr(0, 12) + " is gone: full review");
    return std::nullopt;
  }
  std::vector<std::string> paths;
  for (const auto& file : *changed) {
    paths.push_back(file.filename);
  }
  const auto dropped = keep_only_files(pr, paths);
  notes.insert(notes.begin(), "_Incremental review: only the commits since the last review at `" +
                                  last->substr(0, 12) + "` (" + std::to_string(pr.files.size()) +
                                  " file(s) changed since; " + std::to_string(dropped) +
                                  " unchanged file(s) not reviewed again)._");
  progress("  incremental: " + std::to_string(pr.files.size()) + " file(s) changed since " +
           last->substr(0, 12));
  return last;
}

std::vector<std::string> file_notes(const github::PullRequest& pr,
                                    const std::vector<std::string>& ignored) {
  std::vector<std::string> notes;
  if (auto note = ignored_note(ignored); !note.empty()) {
    notes.push_back(std::move(note));
  }
  if (pr.diff_from_patches) {
    notes.push_back(
        "_GitHub's diff of this pull request was too large; the review read per-file patches._");
  }
  std::string unreadable;
  for (const auto& file : pr.files) {
    if (!file.patch && file.status != "removed") {
      unreadable += (unreadable.empty() ? "" : ", ") + ("`" + file.filename + "`");
    }
  }
  if (!unreadable.empty()) {
    notes.push_back(
        "_Files without a textual diff (binary or too large), not reviewed: " + unreadable + "._");
  }
  return notes;
}

AgentOptions agent_options(const llm::ProviderConfig& provider, const ReviewSettings& settings,
                           const RepoConfig& config, const std::string& session_id) {
  AgentOptions options;
  options.model = provider.model;
  options.max_steps = settings.max_steps;
  options.token_budget = settings.token_budget;
  options.context_tokens = provider.context_tokens;
  options.session_id = session_id;
  options.instructions = config.instructions.value_or("");
  if (settings.tools != "auto") {
    options.native_tools = settings.tools == "native";
  }
  return options;
}

// Drops comments below the threshold; returns how many.
std::size_t apply_threshold(std::vector<DraftComment>& comments,
                            const std::optional<std::string>& threshold) {
  if (!threshold) {
    return 0;
  }
  const int minimum = severity_rank(*threshold);
  const auto before = comments.size();
  std::erase_if(comments,
                [&](const DraftComment& c) { return severity_rank(c.severity) < minimum; });
  return before - comments.size();
}

}  // namespace

ReviewRun run_review(github::Client& github, const github::RepoRef& repo, int number,
                     const ReviewSettings& settings, const ProviderResolver& resolve_provider,
                     bool can_read_existing, const Progress& progress) {
  const auto started = std::chrono::steady_clock::now();
  ReviewRun run;
  auto& pr = run.pr;
  pr = github.fetch_pull_request(repo, number);
  progress("  " + pr.meta.title + " (" + std::to_string(pr.files.size()) + " files, head " +
           pr.meta.head_sha.substr(0, 12) + ")");
  const auto config = read_repo_config(github, pr, settings, progress);

  auto globs = settings.no_default_ignores || config.default_ignores == false
                   ? std::vector<std::string>{}
                   : default_ignore_globs();
  globs.insert(globs.end(), config.ignore.begin(), config.ignore.end());
  globs.insert(globs.end(), settings.ignore.begin(), settings.ignore.end());
  const auto ignored = drop_ignored_files(pr, globs);
  auto notes = file_notes(pr, ignored);
  if (can_read_existing && !settings.full) {
    run.incremental_since = narrow_to_new_commits(github, pr, notes, progress);
  }

  auto provider = resolve_provider(config.model);
  provider.native_tools = settings.tools != "text";
  auto chat = llm::make_chat_client(provider);
  progress("Reviewing with " + chat->describe() + "...");
  ToolLimits limits;
  limits.max_comments = settings.max_comments.value_or(config.max_comments.value_or(10));
  // One observation may take at most a quarter of the context (a 8k model reads ~2k at a time).
  limits.max_observation_tokens = std::clamp<std::int64_t>(provider.context_tokens / 4, 500, 6000);
  ReviewTools tools{pr,
                    [&](const std::string& path) {
                      return github.get_file_content(repo, path, pr.meta.head_sha);
                    },
                    limits};
  const auto session_id = repo.full_name() + "#" + std::to_string(number);
  auto result =
      ReviewAgent{*chat, tools, agent_options(provider, settings, config, session_id)}.run();
  const auto below =
      apply_threshold(result.comments, settings.severity_threshold ? settings.severity_threshold
                                                                   : config.severity_threshold);
  progress("  " + std::to_string(result.steps) + " model calls, " +
           std::to_string(result.comments.size()) + " comment(s) drafted, " +
           std::to_string(result.rejected_comments) + " refused as off the diff (" +
           result.stop_reason + ")");
  if (below > 0) {
    notes.push_back("_" + std::to_string(below) +
                    " comment(s) below the severity threshold were not posted._");
  }
  if (result.forced_finish) {
    notes.push_back("_The review stopped at a limit (" + result.stop_reason + ") after " +
                    std::to_string(result.steps) + " model calls._");
  }

  ReviewDraft draft;
  draft.summary = result.summary;
  draft.comments = result.comments;
  draft.signature = provider.model + " via " + std::string{to_string(provider.provider)};
  draft.notes = std::move(notes);
  run.usage = llm::usage_line({provider.model, std::string{to_string(provider.provider)},
                               result.prompt_tokens, result.completion_tokens,
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - started),
                               result.steps, false});
  draft.usage = run.usage;
  progress(run.usage);

  if (settings.dry_run) {
    try {
      run.prepared = prepare_review(pr, draft, can_read_existing ? &github : nullptr);
    } catch (const github::GithubError& e) {
      spdlog::warn("could not read the existing comments ({}); nothing is skipped", e.what());
      run.prepared = prepare_review(pr, draft, nullptr);
    }
    run.rendered = render_review(pr, run.prepared);
    return run;
  }
  run.prepared = prepare_review(pr, draft, &github);
  run.published = post_review(github, pr, run.prepared);
  return run;
}

}  // namespace llmgw::review
